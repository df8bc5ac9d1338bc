package config

import (
	"errors"
	"strings"
	"testing"
)

// A key written one level too high, or under a near name, is told where
// it goes: under the section beside it that has such a key. It is one
// problem, said on its own line, and not also as the key it should have
// been's "required".
func TestAKeyAtTheWrongLevelSaysWhereItGoes(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		want       []string // every line of the report
	}{
		{"a token key one level too high", moved(minimal, "      client_id: id\n", "    client_id: id\n"),
			[]string{`upstreams.api.client_id: unknown key here; move it under token: (where it is required and not set)`}},
		{"one that is not required", minimal + "    body_format: json\n",
			[]string{`upstreams.api.body_format: unknown key here; move it under token:`}},
		{"one written at both levels", minimal + "    client_id: id\n",
			[]string{`upstreams.api.client_id: unknown key here; token: has one too: remove this one`}},
		{"a section's key at the top", minimal + "level: debug\n",
			[]string{`level: unknown key here; move it under log:`}},
		// timeout is token's, and upstream_timeout the one beside target.
		{"a key of its own that it ends", minimal + "    timeout: 5s\n",
			[]string{`upstreams.api.timeout: unknown key; did you mean "upstream_timeout"?`}},
		{"token_url beside token", moved(minimal, "      url: https://api.example/token\n", "    token_url: https://api.example/token\n"),
			[]string{`upstreams.api.token_url: unknown key; did you mean "url" under token:, which is required and not set?`}},
		{"token_url in token", strings.Replace(minimal, "      url: https://api.example/token\n", "      token_url: https://api.example/token\n", 1),
			[]string{`upstreams.api.token.token_url: unknown key; did you mean "url", which is required and not set?`}},
		{"token_url beside a token that has url", minimal + "    token_url: https://api.example/token\n",
			[]string{`upstreams.api.token_url: unknown key; did you mean "url" under token:?`}},
	} {
		_, err := Parse([]byte(tt.file), Options{NoEnvOverrides: true})
		var problems Problems
		if !errors.As(err, &problems) {
			t.Errorf("%s: got %v", tt.name, err)
			continue
		}
		var got []string
		for _, p := range problems {
			got = append(got, line(p))
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// A value written with a near spelling gets a "did you mean"; the
// authorization-code grant, which the proxy cannot do, points to the one
// it can and to authproxy login.
func TestAValueNearAnAllowedOne(t *testing.T) {
	for _, tt := range []struct{ grant, want string }{
		{"client-credentials", `upstreams.api.token.grant_type: "client-credentials" is not allowed; did you mean client_credentials?`},
		{"Refresh_Token", `upstreams.api.token.grant_type: "Refresh_Token" is not allowed; did you mean refresh_token?`},
		{"authorization_code", `upstreams.api.token.grant_type: "authorization_code" is not allowed: the proxy cannot do its interactive part, in a browser; ` +
			`write grant_type: refresh_token and authorize_url, and log in once with authproxy login api: the proxy then uses the refresh token that login stores`},
	} {
		file := strings.Replace(minimal, "client_id: id", "client_id: id\n      grant_type: "+tt.grant+"\n      redirect_uri: http://127.0.0.1:8085/callback", 1)
		_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
		var problems Problems
		if !errors.As(err, &problems) || len(problems) != 1 || line(problems[0]) != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.grant, err, tt.want)
		}
	}
}

// moved is file with the line from taken out, and to written above the
// upstream's token:.
func moved(file, from, to string) string {
	return strings.Replace(strings.Replace(file, from, "", 1), "    token:\n", to+"    token:\n", 1)
}
