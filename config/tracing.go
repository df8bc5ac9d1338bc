package config

import "net/url"

// The keys here are tracing's: whether the proxy sends OpenTelemetry
// traces, and where (docs/tracing.md). What they leave unset, the
// standard OTEL_* variables decide, as any OpenTelemetry SDK reads them.

// Tracing is the tracing section. Its zero value is off.
type Tracing struct {
	// Enabled turns tracing on; off, it costs nothing.
	Enabled bool
	// Endpoint is the OTLP receiver's base URL, as
	// OTEL_EXPORTER_OTLP_ENDPOINT is written (http://host:4317 for gRPC,
	// http://host:4318 for HTTP, which sends to /v1/traces below it
	// unless the URL has a path); "": the OTEL_EXPORTER_OTLP_* variables,
	// else localhost.
	Endpoint string
	// Protocol is "grpc" or "http" (OTLP/HTTP with protobuf); "":
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL,
	// else http.
	Protocol string
	// SampleRatio is the share of the traces that the proxy starts that
	// it records, 0 to 1, if SampleRatioSet; a request whose client sent
	// a traceparent follows the client's choice. Unset,
	// OTEL_TRACES_SAMPLER decides (by default, every trace).
	SampleRatio    float64
	SampleRatioSet bool
}

type fileTracing struct {
	Enabled     *onOff `mapstructure:"enabled"`
	Endpoint    string `mapstructure:"endpoint"`
	Protocol    string `mapstructure:"protocol"`
	SampleRatio *ratio `mapstructure:"sample_ratio"`
}

// tracing checks the tracing section.
func (p *Problems) tracing(ft fileTracing) Tracing {
	tr := Tracing{Endpoint: ft.Endpoint, Protocol: ft.Protocol}
	if ft.Enabled != nil {
		tr.Enabled = bool(*ft.Enabled)
	}
	if ft.SampleRatio != nil {
		tr.SampleRatio, tr.SampleRatioSet = float64(*ft.SampleRatio), true
	}
	if tr.Protocol != "" {
		p.oneOf("tracing.protocol", tr.Protocol, "grpc", "http")
	}
	if tr.Endpoint != "" {
		u, err := url.Parse(tr.Endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			p.add("tracing.endpoint", "%q is not an http:// or https:// URL; write e.g. http://127.0.0.1:4317 for grpc or http://127.0.0.1:4318 for http", tr.Endpoint)
		case u.User != nil || u.RawQuery != "":
			// Headers for the collector go in OTEL_EXPORTER_OTLP_HEADERS.
			p.add("tracing.endpoint", "must not hold a user, password or query; give credentials in OTEL_EXPORTER_OTLP_HEADERS")
		}
	}
	return tr
}
