package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A value that names an unset variable is one problem: not also
// "required", "not a URL" or "not a Redis URL" for the empty text left.
func TestAnUnsetVariableIsOneProblem(t *testing.T) {
	file := "store: {type: redis, url: \"${REDIS_URL}\"}\n" + strings.NewReplacer(
		"target: https://api.example", "target: ${API_URL}", "client_id: id", "client_id: ${API_ID}").Replace(minimal)
	_, err := Parse([]byte(file), Options{Lookup: lookup(nil), NoEnvOverrides: true})
	var problems Problems
	if !errors.As(err, &problems) || len(problems) != 3 {
		t.Fatalf("got %v", err)
	}
	for i, key := range []string{"store.url", "upstreams.api.target", "upstreams.api.token.client_id"} {
		if problems[i].Key != key || !strings.HasPrefix(problems[i].Message, "environment variable ") {
			t.Errorf("problem %d: %+v", i, problems[i])
		}
	}
}

// A URL that is refused may still hold a key in its query or a password
// (a token URL with ?api_key=, say): the problem, which check prints and
// a reload logs, names the key but does not quote such a URL.
func TestARefusedURLWithAKeyIsNotQuoted(t *testing.T) {
	for _, bad := range []string{"htps://api.example/token?api_key=K3Y-in-query", "api.example/token?api_key=K3Y-in-query",
		"ftp://user:K3Y-in-query@api.example/token", "https://api.example/token?api_key=K3Y-in-query#frag"} {
		file := strings.Replace(minimal, "url: https://api.example/token", "url: "+bad, 1)
		_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
		if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.url") {
			t.Errorf("%s: got %v", bad, err)
		} else if strings.Contains(err.Error(), "K3Y") {
			t.Errorf("%s: the problem quotes the key: %v", bad, err)
		}
	}
	// One without a query or credentials is still quoted, to show what is wrong.
	file := strings.Replace(minimal, "url: https://api.example/token", "url: htps://api.example/token", 1)
	if _, err := Parse([]byte(file), Options{NoEnvOverrides: true}); err == nil || !strings.Contains(err.Error(), `"htps://api.example/token"`) {
		t.Errorf("got %v", err)
	}
}

// A required key written with a typo is one mistake, said once: on the
// unknown key's line, which names the key meant and says it is required,
// and not again as that key's "required".
func TestAMisspeltRequiredKeyIsOneProblem(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		want       []string // every line of the report
	}{
		{"a key", strings.Replace(minimal, "target:", "targt:", 1),
			[]string{`upstreams.api.targt: unknown key; did you mean "target", which is required and not set?`}},
		{"a secret", strings.Replace(minimal, "client_secret:", "clientsecret:", 1),
			[]string{`upstreams.api.token.clientsecret: unknown key; did you mean "client_secret", which is required and not set?`}},
		{"a secret's file, which would do instead", strings.Replace(minimal, "client_secret:", "client_secret_fle:", 1),
			[]string{`upstreams.api.token.client_secret_fle: unknown key; did you mean "client_secret_file", which is required and not set?`}},
		{"a section of required keys", strings.Replace(minimal, "token:", "tokn:", 1),
			[]string{`upstreams.api.tokn: unknown key; did you mean "token", whose required keys are not set?`}},
		{"the upstreams", strings.Replace(minimal, "upstreams:", "upstream:", 1),
			[]string{`upstream: unknown key; did you mean "upstreams", which is required and not set?`}},
		// A typo of a key that is set, or not required, is only that.
		{"a key that is set", strings.Replace(minimal, "target: https://api.example", "target: https://api.example\n    targt: x", 1),
			[]string{`upstreams.api.targt: unknown key; did you mean "target"?`}},
		{"a key that is not required", strings.Replace(minimal, "target:", "path_prefx: /x\n    target:", 1),
			[]string{`upstreams.api.path_prefx: unknown key; did you mean "path_prefix"?`}},
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
			t.Errorf("%s: got\n  %s\nwant\n  %s", tt.name, strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
		}
	}
}

// What Options.CheckUpstream finds is reported with config's own problems,
// in one list, for every upstream; but not in a section where config found
// a problem already: a value there may be a default left in place of a
// bad one, and what the check says of it would repeat config.
func TestCheckUpstreamProblemsAreReportedWithTheOthers(t *testing.T) {
	file := `
upstreams:
  one:
    target: ftp://api.example
    token: {url: "https://api.example/token", client_id: id, client_secret: s}
  two:
    target: https://api.example
    path_prefix: /two
    token: {url: "https://api.example/token", client_id: id, client_secret: s, timeout: 0s}
`
	asked := map[string]bool{}
	check := func(u Upstream) Problems {
		asked[u.Name] = true
		return Problems{
			{Key: "upstreams." + u.Name + ".token.client_secret", Message: "too short"},
			{Key: "upstreams." + u.Name + ".tls", Message: "unusable"},
		}
	}
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true, CheckUpstream: check})
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, line(p))
	}
	want := []string{
		`upstreams.one.target: "ftp://api.example" is not an absolute http(s) URL; write e.g. https://api.example.com`,
		"upstreams.one.tls: unusable",
		"upstreams.one.token.client_secret: too short",
		"upstreams.two.tls: unusable",
		"upstreams.two.token.timeout: must be more than 0; write e.g. 10s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !asked["one"] || !asked["two"] {
		t.Errorf("asked about %v", asked)
	}
}

// A value set by an AUTHPROXY_ variable is not the file's: its problem
// names the variable beside the key, or the reader looks for "x" in a
// file that says 127.0.0.1:8080. Only the name: a secret's value is never
// shown.
func TestAProblemWithAValueFromTheEnvironmentNamesItsVariable(t *testing.T) {
	file := "listen: 127.0.0.1:8080\nlog: {level: loud}\n" + strings.Replace(minimal, "client_secret: s3cret", "auth_method: none", 1)
	t.Setenv("AUTHPROXY_LISTEN", "x")
	t.Setenv("AUTHPROXY_UPSTREAMS_API_TOKEN_TIMEOUT", "5")
	t.Setenv("AUTHPROXY_UPSTREAMS_API_REPLAY_ON_STATUS", "401,abc")
	t.Setenv("AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET", "Env-S3cret-value")
	_, err := Parse([]byte(file), Options{})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`listen (from AUTHPROXY_LISTEN): "x" is not host:port; write e.g. 127.0.0.1:8080`,
		`upstreams.api.token.timeout (from AUTHPROXY_UPSTREAMS_API_TOKEN_TIMEOUT): "5" is not a duration; write it with a unit`,
		`upstreams.api.replay.on_status[1] (from AUTHPROXY_UPSTREAMS_API_REPLAY_ON_STATUS): "abc" is not a number`,
		"upstreams.api.token.client_secret (from AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET): auth_method none sends no client secret",
		// The file's own value is the file's.
		"\n  log.level: \"loud\" is not allowed",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if strings.Contains(msg, "Env-S3cret-value") {
		t.Error("the error shows the secret")
	}
	if t.Failed() {
		t.Log(msg)
	}
}

// A misspelt key beside the key it resembles, which is there, is only
// unknown: it must not stand in for what is missing from the real one.
func TestMisspeltKeyBesideTheRealOneHidesNothing(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"upstream: x\n" + strings.Replace(minimal, "    target: https://api.example\n", "", 1), "upstreams.api.target: required"},
		{strings.Replace(strings.Replace(minimal, "      client_id: id\n", "", 1), "    token:", "    tokn: {x: 1}\n    token:", 1), "upstreams.api.token.client_id: required"},
	} {
		_, err := Parse([]byte(tt.file), Options{NoEnvOverrides: true})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "which is required") || strings.Contains(err.Error(), "whose required keys") {
			t.Errorf("want %q, and the typo only unknown:\n%v", tt.want, err)
		}
	}
}

// A secret and its _file are one setting written two ways: a problem
// named by one of them names the variable that set the other.
func TestProblemOfASecretNamesTheVariableThatSetItsFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET_FILE", secret)
	_, err := Parse([]byte(strings.Replace(minimal, "client_secret: s3cret", "auth_method: none", 1)), Options{})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.client_secret (from AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET_FILE): ") {
		t.Errorf("the variable is not named:\n%v", err)
	}
	t.Setenv("AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET_FILE", "")
	t.Setenv("AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET", "from-env")
	_, err = Parse([]byte(strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: "+secret, 1)), Options{})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.client_secret_file (from AUTHPROXY_UPSTREAMS_API_TOKEN_CLIENT_SECRET): set either") || strings.Contains(err.Error(), "from-env") {
		t.Errorf("the variable is not named:\n%v", err)
	}
}
