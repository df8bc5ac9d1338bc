package config

import (
	"strings"
	"testing"
)

func TestTracingIsOffByDefault(t *testing.T) {
	cfg, err := Parse([]byte(minimal), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tracing{}); cfg.Tracing != want {
		t.Errorf("tracing %+v, want %+v", cfg.Tracing, want)
	}
}

func TestTracingSection(t *testing.T) {
	file := "tracing:\n  enabled: true\n  endpoint: http://127.0.0.1:4317\n  protocol: grpc\n  sample_ratio: 0.25\n" + minimal
	cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tracing{Enabled: true, Endpoint: "http://127.0.0.1:4317", Protocol: "grpc", SampleRatio: 0.25, SampleRatioSet: true}); cfg.Tracing != want {
		t.Errorf("tracing %+v, want %+v", cfg.Tracing, want)
	}
}

func TestTracingFromTheEnvironment(t *testing.T) {
	t.Setenv("AUTHPROXY_TRACING_ENABLED", "true")
	t.Setenv("AUTHPROXY_TRACING_PROTOCOL", "http")
	t.Setenv("AUTHPROXY_TRACING_SAMPLE_RATIO", "1")
	cfg, err := Parse([]byte(minimal), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tracing{Enabled: true, Protocol: "http", SampleRatio: 1, SampleRatioSet: true}); cfg.Tracing != want {
		t.Errorf("tracing %+v, want %+v", cfg.Tracing, want)
	}
}

func TestTracingProblemsNameTheKey(t *testing.T) {
	file := "tracing:\n  enabled: maybe\n  endpoint: 127.0.0.1:4317\n  protocol: grcp\n  sample_ratio: 2\n" + minimal
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	for _, want := range []string{
		`tracing.enabled: "maybe" is not true or false`,
		`tracing.endpoint: "127.0.0.1:4317" is not an http:// or https:// URL; write e.g. http://127.0.0.1:4317`,
		`tracing.protocol: "grcp" is not allowed; did you mean grpc?`,
		`tracing.sample_ratio: "2" is not a number from 0 to 1`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	_, err = Parse([]byte("tracing:\n  endpoint: https://user:pw@collector:4318?x=1\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "tracing.endpoint: must not hold a user, password or query") || strings.Contains(err.Error(), "pw") {
		t.Errorf("endpoint with credentials: %v", err)
	}
}
