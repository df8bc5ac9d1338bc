package config

import (
	"errors"
	"reflect"
	"testing"
)

// The checks only record; resolve alone decides what is reported, and in
// what words, once every check has run.
func TestResolveDecidesOnceEveryCheckHasRun(t *testing.T) {
	var found Problems
	found.unread("upstreams.a.token.url", errors.New("environment variable U is not set"))
	found.unread("upstreams.a.token.url", errors.New("a second reason")) // the first stands
	found.add("upstreams.a.token.url", "not a URL")                      // follows from it
	found.misspelt("upstreams.a.token.client_secrt", "upstreams.a.token.client_secret", "")
	found.misspelt("upstreams.a.client_id", "upstreams.a.token.client_id", "token") // token: has one too
	found.misspelt("upstreams.b.tokn", "upstreams.b.token", "")
	found.required("upstreams.a.token.client_secret", []string{"upstreams.a.token.client_secret_file"}, "required")
	found.required("upstreams.b.token.client_id", nil, "required")  // said by tokn
	found.required("upstreams.c.token.client_id", nil, "required")  // emptied by ${E}
	found.required("upstreams.c.token.username", nil, "required c") // not emptied
	found.checked(Problems{{Key: "upstreams.a.token.client_secret", Message: "short"}, {Key: "upstreams.a.token.tls.ca_file", Message: "in a section with one already"}})
	found.checked(Problems{{Key: "upstreams.c.tls.cert_file", Message: "bad cert"}, {Key: "upstreams.c.tls.key_file", Message: "same batch, kept"}})
	found.checked(Problems{{Key: "upstreams.c.tls.ca_file", Message: "after a batch in the section"}})
	if len(found) != 15 {
		t.Fatalf("the checks recorded %d problems, want all 15: recording decides nothing", len(found))
	}
	settings := map[string]any{"upstreams": map[string]any{"a": map[string]any{"token": map[string]any{"client_id": "x"}}}}
	got := found.resolve(settings, map[string]string{"upstreams.c.token.client_id": "E"})
	want := []string{
		"upstreams.a.token.url: environment variable U is not set",
		`upstreams.a.token.client_secrt: unknown key; did you mean "client_secret", which is required and not set?`,
		"upstreams.a.client_id: unknown key here; token: has one too: remove this one",
		`upstreams.b.tokn: unknown key; did you mean "token", whose required keys are not set?`,
		"upstreams.c.token.client_id: environment variable E is set but empty; set it (export E=...), or write the value in place of ${E}",
		"upstreams.c.token.username: required c",
		"upstreams.c.tls.cert_file: bad cert",
		"upstreams.c.tls.key_file: same batch, kept",
	}
	var lines []string
	for _, q := range got {
		lines = append(lines, q.Key+": "+q.Message)
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got\n%q\nwant\n%q", lines, want)
	}
}
