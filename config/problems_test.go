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
