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

// A variable that is set but empty leaves a required key empty: the
// problem says so, naming the variable, rather than asking for the
// ${ENV_VAR} the file already has.
func TestASetButEmptyVariableIsNamed(t *testing.T) {
	for _, tt := range []struct {
		name, from, to, want string
	}{
		{"a secret", "client_secret: s3cret", "client_secret: ${PH_CLIENT_SECRET}",
			"upstreams.api.token.client_secret: environment variable PH_CLIENT_SECRET is set but empty; set it (export PH_CLIENT_SECRET=...), or write the value in place of ${PH_CLIENT_SECRET}"},
		{"a secret's file", "client_secret: s3cret", "client_secret_file: ${PH_CLIENT_SECRET}",
			"upstreams.api.token.client_secret: environment variable PH_CLIENT_SECRET is set but empty; set it (export PH_CLIENT_SECRET=...), or write the value in place of ${PH_CLIENT_SECRET}"},
		{"a URL", "target: https://api.example", "target: ${PH_CLIENT_SECRET}",
			"upstreams.api.target: environment variable PH_CLIENT_SECRET is set but empty; set it (export PH_CLIENT_SECRET=...), or write the value in place of ${PH_CLIENT_SECRET}"},
		{"a client id", "client_id: id", `client_id: "${PH_CLIENT_SECRET}${OTHER}"`,
			"upstreams.api.token.client_id: environment variable PH_CLIENT_SECRET is set but empty; set it (export PH_CLIENT_SECRET=...), or write the value in place of ${PH_CLIENT_SECRET}"},
	} {
		file := strings.Replace(minimal, tt.from, tt.to, 1)
		_, err := Parse([]byte(file), Options{Lookup: lookup(map[string]string{"PH_CLIENT_SECRET": "", "OTHER": ""}), NoEnvOverrides: true})
		if err == nil || err.Error() != "1 problem:\n  "+tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.name, err, tt.want)
		}
	}
	// An optional key may well be emptied by a variable: that is no problem.
	file := strings.Replace(minimal, "target: https://api.example", "target: https://api.example\n    path_prefix: ${PREFIX}", 1)
	if _, err := Parse([]byte(file), Options{Lookup: lookup(map[string]string{"PREFIX": ""}), NoEnvOverrides: true}); err != nil {
		t.Errorf("an empty path_prefix from a variable: %v", err)
	}
}
