package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracingShutdownTimeout bounds the export of the spans still held at
// exit: a collector that is gone must not hold up a shutdown.
const tracingShutdownTimeout = 5 * time.Second

// startTracing builds the TracerProvider that auth and proxy record
// spans with (docs/tracing.md), or nil with tracing off. The config's
// tracing section wins; what it leaves unset the standard OTEL_*
// variables decide, read by the exporters and the SDK themselves
// (OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _TIMEOUT, _CERTIFICATE...,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
// _ARG, OTEL_BSP_*), but for the protocol, which picks the exporter and
// is read here. OTEL_SDK_DISABLED=true turns tracing off. stop sends the
// spans still held and stops the exporter.
func startTracing(ctx context.Context, c config.Tracing, getenv func(string) string, log logrus.FieldLogger) (tp trace.TracerProvider, stop func(), err error) {
	nothing := func() {}
	if !c.Enabled {
		return nil, nothing, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		log.Info("tracing.enabled is true, but OTEL_SDK_DISABLED=true: no traces are sent")
		return nil, nothing, nil
	}
	protocol, err := tracingProtocol(c.Protocol, getenv)
	if err != nil {
		return nil, nothing, err
	}
	var exp *otlptrace.Exporter
	if protocol == "grpc" {
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(c.Endpoint))
			// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the traces
			// go to /v1/traces below it.
			if u, _ := url.Parse(c.Endpoint); u != nil && strings.TrimSuffix(u.Path, "/") == "" {
				opts = append(opts, otlptracehttp.WithURLPath("/v1/traces"))
			}
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, nothing, fmt.Errorf("tracing: %w", err)
	}
	// service.name is authproxy unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise (WithFromEnv comes after).
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "authproxy")),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		log.WithError(err).Warn("tracing: some OTEL_RESOURCE_ATTRIBUTES were not understood")
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if c.SampleRatioSet {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))))
	}
	provider := sdktrace.NewTracerProvider(opts...)
	// The SDK reports a failed export through OpenTelemetry's one global
	// error handler; the proxy's log is where an operator looks.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.WithError(err).Warn("tracing: spans could not be exported")
	}))
	log.WithFields(logrus.Fields{"protocol": protocol, "endpoint": endpointForLog(c.Endpoint, protocol, getenv)}).Info("tracing on")
	return provider, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownTimeout)
		defer cancel()
		if err := provider.Shutdown(ctx); err != nil {
			log.WithError(err).Warn("tracing: the last spans could not be exported")
		}
	}, nil
}

// tracingProtocol is the exporter's protocol: the config's, else the
// OTLP variables', else http (the OpenTelemetry specification's default).
func tracingProtocol(configured string, getenv func(string) string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		switch v := strings.TrimSpace(getenv(name)); v {
		case "":
			continue
		case "grpc":
			return "grpc", nil
		case "http/protobuf", "http":
			return "http", nil
		default:
			return "", fmt.Errorf("tracing: %s=%q is not supported; write grpc or http/protobuf", name, v)
		}
	}
	return "http", nil
}

// endpointForLog says where spans go, for the start-up line: the URL
// without anything after its host, which may carry credentials.
func endpointForLog(configured, protocol string, getenv func(string) string) string {
	e := configured
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if e == "" {
			e = getenv(name)
		}
	}
	if e == "" {
		if protocol == "grpc" {
			return "localhost:4317 (default)"
		}
		return "localhost:4318 (default)"
	}
	if u, err := url.Parse(e); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return "(set)"
}
