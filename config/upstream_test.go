package config

import (
	"errors"
	"fmt"
	"regexp"
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

// What a problem suggests writing must itself be accepted: a name that is
// not allowed is not suggested as a path (it was: "write e.g. /b@d"). And
// a name that is not allowed is one problem; the default path_prefix it
// makes is not another.
func TestSuggestedNamesAndPrefixesAreValid(t *testing.T) {
	suggestion := regexp.MustCompile(`write e\.g\. (\S+?),? `)
	upstream := func(name, prefix string) string {
		file := strings.Replace(minimal, "  api:", fmt.Sprintf("  %q:", name), 1)
		if prefix != "" {
			file = strings.Replace(file, "target:", "path_prefix: "+prefix+"\n    target:", 1)
		}
		return file
	}
	problems := func(file string) map[string]string {
		_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
		got := map[string]string{}
		var ps Problems
		errors.As(err, &ps)
		for _, p := range ps {
			got[p.Key] = p.Message
		}
		return got
	}
	for _, name := range []string{"B@d", "b d", "@@", "_x", "a+b", "x~y", "ünï", "b@"} {
		folded := strings.ToLower(name)
		got := problems(upstream(name, ""))
		msg, ok := got["upstreams."+folded]
		if len(got) != 1 || !ok {
			t.Errorf("%q: want one problem, for the name: %v", name, got)
			continue
		}
		m := suggestion.FindStringSubmatch(msg + " ")
		if m == nil {
			t.Errorf("%q: %q suggests no name", name, msg)
			continue
		}
		if again := problems(upstream(m[1], "")); len(again) != 0 {
			t.Errorf("%q: the suggested name %q is refused: %v", name, m[1], again)
		}
		got = problems(upstream(name, `"/a b"`))
		msg = got["upstreams."+folded+".path_prefix"]
		m = suggestion.FindStringSubmatch(msg)
		if m == nil {
			t.Errorf("%q: %q suggests no path", name, msg)
			continue
		}
		if again := problems(upstream(name, m[1])); again["upstreams."+folded+".path_prefix"] != "" {
			t.Errorf("%q: the suggested path %q is refused: %v", name, m[1], again)
		}
	}
}

// Names are folded to lower case, as viper folds every key; README says
// so. This is the behaviour it describes, not a choice made here.
func TestUpstreamNamesAreFoldedToLowerCase(t *testing.T) {
	cfg, err := Parse([]byte(strings.Replace(minimal, "  api:", "  RedGifs:", 1)), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Upstreams[0]; u.Name != "redgifs" || u.PathPrefix != "/redgifs" {
		t.Errorf("name %q, prefix %q", u.Name, u.PathPrefix)
	}
}

// The problem of tls on a plain-http URL does not quote the URL: its
// userinfo or query may hold a credential.
func TestTLSOnHTTPDoesNotQuoteTheURL(t *testing.T) {
	file := strings.NewReplacer("target: https://api.example", "target: http://u:TargetPassw0rd@api.example\n    tls: {server_name: x}",
		"url: https://api.example/token", "url: http://api.example/token?api_key=TokenK3Y\n      tls: {ca_file: /etc/hostname}").Replace(minimal)
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.tls: ") || !strings.Contains(err.Error(), "upstreams.api.token.tls: ") {
		t.Fatalf("want both tls problems:\n%v", err)
	}
	if strings.Contains(err.Error(), "TargetPassw0rd") || strings.Contains(err.Error(), "TokenK3Y") {
		t.Errorf("a credential is shown:\n%v", err)
	}
}

// max_connections caps an upstream's connections: 256 unless set, 0 for
// no cap, and a negative number is refused by its key.
func TestMaxConnections(t *testing.T) {
	for _, tt := range []struct {
		line string
		want int
		bad  bool
	}{{"", MaxConnectionsAuto, false}, {"\n    max_connections: 64", 64, false}, {"\n    max_connections: 0", 0, false}, {"\n    max_connections: -1", 0, true}} {
		file := strings.Replace(minimal, "target: https://api.example", "target: https://api.example"+tt.line, 1)
		cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), "upstreams.api.max_connections: is -1") {
				t.Errorf("%q: %v; want the key named", tt.line, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := cfg.Upstreams[0].MaxConnections; got != tt.want {
			t.Errorf("%q: max connections %d, want %d", tt.line, got, tt.want)
		}
	}
}
