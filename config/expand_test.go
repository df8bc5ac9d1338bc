package config

import (
	"strings"
	"testing"
)

func TestEnvironmentExpansion(t *testing.T) {
	file := strings.Replace(minimal, "client_id: id", "client_id: ${API_ID}-$${literal}", 1)
	cfg, err := Parse([]byte(file), Options{Lookup: lookup(map[string]string{"API_ID": "abc"}), NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Token.ClientID; got != "abc-${literal}" {
		t.Errorf("client_id %q", got)
	}
	_, err = Parse([]byte(strings.Replace(minimal, "s3cret", "${MISSING_SECRET}", 1)), Options{Lookup: lookup(nil), NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.client_secret: environment variable MISSING_SECRET is not set") {
		t.Errorf("got %v", err)
	}
}
