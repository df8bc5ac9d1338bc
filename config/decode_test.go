package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValuesOfTheWrongShapeNameTheirKey(t *testing.T) {
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret: s3cret\n      timeout: [1, 2]\n    replay: {on_status: [abc]}", 1)
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.timeout: must be one value, not a list") ||
		!strings.Contains(err.Error(), `upstreams.api.replay.on_status[0]: "abc" is not a number`) {
		t.Errorf("got %v", err)
	}
}

// A value that cannot be decoded is one problem: not also what the
// decoder says after it, nor "required" for the keys it should hold.
func TestAValueOfTheWrongShapeIsOneProblem(t *testing.T) {
	for _, tt := range []struct{ file, key, says string }{
		{"log: 3\n" + minimal, "log", "must be a mapping of keys, not a number"},
		{"store: \"${UNSET}\"\n" + minimal, "store", "must be a mapping of keys, not text"},
		{"upstreams: [1, 2]", "upstreams", "must be a mapping of keys, not a list"},
		{"upstreams: {a: 1}", "upstreams.a", "must be a mapping of keys, not a number"},
		{"upstreams:\n  a:\n    target: https://x\n    token: 5\n", "upstreams.a.token", "must be a mapping of keys, not a number"},
		{strings.Replace(minimal, "client_secret: s3cret", "client_secret: [s3cret]", 1), "upstreams.api.token.client_secret", "must be one value, not a list"},
		{minimal + "      scopes: {a: 1}\n", "upstreams.api.token.scopes", "must be a list, not a mapping"},
		{minimal + "    replay: {on_status: [true]}\n", "upstreams.api.replay.on_status[0]", "must be a number, not a boolean; write an HTTP status such as 401"},
	} {
		_, err := Parse([]byte(tt.file), Options{Lookup: lookup(nil), NoEnvOverrides: true})
		var problems Problems
		if !errors.As(err, &problems) || len(problems) != 1 || problems[0].Key != tt.key || problems[0].Message != tt.says {
			t.Errorf("%q: got %v, want %s: %s", tt.file, err, tt.key, tt.says)
		}
	}
}

// ${VAR} is replaced before values are decoded: a duration, a size or a
// list may come from a variable as well as a text.
func TestVariablesInValuesOfEveryType(t *testing.T) {
	file := minimal + "      timeout: ${T}\n      scopes: ${SCOPES}\n    replay: {max_body: \"${B}\", on_status: \"${CODES}\"}\n"
	env := map[string]string{"T": "5s", "SCOPES": "a, b", "B": "2KiB", "CODES": "401,403"}
	cfg, err := Parse([]byte(file), Options{Lookup: lookup(env), NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams[0]
	if u.Token.Timeout != 5*time.Second || !reflect.DeepEqual(u.Token.Scopes, []string{"a", "b"}) || u.Replay.MaxBody != 2<<10 ||
		!reflect.DeepEqual(u.Replay.OnStatus, []int{401, 403}) {
		t.Errorf("token %+v, replay %+v", u.Token, u.Replay)
	}
	// One problem for the variable, not also "is not a duration".
	_, err = Parse([]byte(file), Options{Lookup: lookup(nil), NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.timeout: environment variable T is not set") ||
		strings.Contains(err.Error(), "not a duration") || strings.Count(err.Error(), "upstreams.api.token.timeout") != 1 {
		t.Errorf("got %v", err)
	}
}

// An unknown key is reported as such, whatever it holds.
func TestAnUnknownKeyHoldingAVariable(t *testing.T) {
	_, err := Parse([]byte(minimal+"      clientsecret: ${UNSET}\n"), Options{Lookup: lookup(nil), NoEnvOverrides: true})
	var problems Problems
	if !errors.As(err, &problems) || len(problems) != 1 ||
		line(problems[0]) != `upstreams.api.token.clientsecret: unknown key; did you mean "client_secret"?` {
		t.Errorf("got %v", err)
	}
}

// Without "did you mean", the keys known there are listed.
func TestAnUnknownKeyListsTheKnownOnes(t *testing.T) {
	_, err := Parse([]byte(minimal+"    replay: {colour: blue}\nwhatever: 1\n"), Options{NoEnvOverrides: true})
	for _, want := range []string{
		"upstreams.api.replay.colour: unknown key; the keys here are on_status, max_body",
		"whatever: unknown key; the keys here are listen, log, shutdown_timeout, inbound, limits, store, admin, tracing, upstreams",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// From the environment, a list is "a, b"; each item is checked.
func TestEnvironmentListsAreCheckedItemByItem(t *testing.T) {
	t.Setenv("AUTHPROXY_UPSTREAMS_API_REPLAY_ON_STATUS", "401, abc")
	_, err := Parse([]byte(minimal), Options{})
	if err == nil || !strings.Contains(err.Error(), `upstreams.api.replay.on_status[1] (from AUTHPROXY_UPSTREAMS_API_REPLAY_ON_STATUS): "abc" is not a number`) {
		t.Errorf("got %v", err)
	}
}

// A number where a duration or size belongs, in a format with no text to
// keep, is one problem that says what to write.
func TestOtherFormatsNumbersForUnits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.json")
	os.WriteFile(path, []byte(`{"limits": {"max_request_body": 1024, "idle_timeout": 5},
		"upstreams": {"api": {"target": "https://x", "token": {"url": "https://x/t", "client_id": "a", "client_secret": "b"}}}}`), 0o600)
	_, err := Load(path, Options{NoEnvOverrides: true})
	var problems Problems
	if !errors.As(err, &problems) || len(problems) != 2 ||
		line(problems[0]) != `limits.idle_timeout: "5" is not a duration; write it with a unit, like 30s, 10m or 1h` ||
		line(problems[1]) != "limits.max_request_body: is a number, not text; write it in quotes so that it is kept as written" {
		t.Errorf("got %v", err)
	}
}

func line(p Problem) string { return p.Key + ": " + p.Message }

// A mapping set to text by the environment is refused, not quietly
// replaced by the file's mapping.
func TestAMappingSetToTextByTheEnvironment(t *testing.T) {
	t.Setenv("AUTHPROXY_UPSTREAMS_API_TOKEN_PARAMS", "x")
	_, err := Parse([]byte(minimal+"      params: {Resource: r}\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.params (from AUTHPROXY_UPSTREAMS_API_TOKEN_PARAMS): must be a mapping of keys, not text") {
		t.Errorf("got %v", err)
	}
}

// A status that is not a number says what to write: an HTTP status.
func TestAStatusThatIsNotANumberSaysWhatToWrite(t *testing.T) {
	for _, tt := range []struct{ replay, says string }{
		{"{on_status: [401, abc]}", `upstreams.api.replay.on_status[1]: "abc" is not a number; write an HTTP status such as 401`},
		{"{on_status: [true]}", "upstreams.api.replay.on_status[0]: must be a number, not a boolean; write an HTTP status such as 401"},
		{"{on_status: abc}", `upstreams.api.replay.on_status[0]: "abc" is not a number; write an HTTP status such as 401`},
	} {
		_, err := Parse([]byte(minimal+"    replay: "+tt.replay+"\n"), Options{NoEnvOverrides: true})
		var problems Problems
		if !errors.As(err, &problems) || len(problems) != 1 || line(problems[0]) != tt.says {
			t.Errorf("%s: got %v, want %s", tt.replay, err, tt.says)
		}
	}
}
