package config

import (
	"strings"
	"testing"
)

func TestPathPrefixes(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"", "/api"}, {`path_prefix: ""`, ""}, {`path_prefix: "/"`, ""}, {`path_prefix: /v1/x/`, "/v1/x"},
	} {
		file := strings.Replace(minimal, "target:", tt.yaml+"\n    target:", 1)
		cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if got := cfg.Upstreams[0].PathPrefix; got != tt.want {
			t.Errorf("%q: prefix %q, want %q", tt.yaml, got, tt.want)
		}
	}
}
