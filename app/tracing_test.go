package app

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/config"
	"github.com/sirupsen/logrus"
)

func TestTracingProtocol(t *testing.T) {
	for _, tt := range []struct {
		configured string
		env        map[string]string
		want, err  string
	}{
		{"", nil, "http", ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "grpc", ""},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc", ""},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, "http", ""},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "", `OTEL_EXPORTER_OTLP_PROTOCOL="http/json" is not supported`},
	} {
		got, err := tracingProtocol(tt.configured, func(k string) string { return tt.env[k] })
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q %v: %q, %v; want %q, %q", tt.configured, tt.env, got, err, tt.want, tt.err)
		}
	}
}

func TestTracingOffGivesNoProvider(t *testing.T) {
	log := logrus.New()
	log.Out = io.Discard
	env := map[string]string{"OTEL_SDK_DISABLED": "true"}
	for _, c := range []config.Tracing{{}, {Enabled: true}} {
		tp, stop, err := startTracing(context.Background(), c, func(k string) string { return env[k] }, log)
		if tp != nil || err != nil {
			t.Errorf("%+v with OTEL_SDK_DISABLED: provider %v, %v", c, tp, err)
		}
		stop()
	}
}
