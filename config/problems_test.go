package config

import (
	"errors"
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
