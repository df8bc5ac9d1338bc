package config

import (
	"strings"
	"testing"
	"time"
)

func TestTokenMinLifetime(t *testing.T) {
	for _, tt := range []struct {
		yaml    string // the line under token:, if any
		want    time.Duration
		problem string
	}{
		{"", 30 * time.Second, ""},
		{"      min_lifetime: 1s\n", time.Second, ""},
		{"      min_lifetime: 5m\n", 5 * time.Minute, ""},
		{"      min_lifetime: 500ms\n", 0, "upstreams.api.token.min_lifetime: must be at least 1s"},
	} {
		cfg, err := Parse([]byte(minimal+tt.yaml), Options{NoEnvOverrides: true})
		switch {
		case tt.problem != "":
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.problem)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case cfg.Upstreams[0].Token.MinLifetime != tt.want:
			t.Errorf("%q: min_lifetime %v, want %v", tt.yaml, cfg.Upstreams[0].Token.MinLifetime, tt.want)
		}
	}
}
