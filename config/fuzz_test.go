package config

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"testing"
)

var simpleToken = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// FuzzParse checks that no config text makes loading panic, that an
// accepted config is usable and the same every time, and that a value was
// not silently rewritten. Its corpus (testdata/fuzz/FuzzParse) holds the
// values YAML coerces when unquoted.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	if b, err := os.ReadFile("../proxy.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("upstreams: [1, 2]"))
	f.Add([]byte("upstreams: {a: 1}"))
	f.Add([]byte("log: 3"))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{Lookup: lookup(map[string]string{"X": "x"}), NoEnvOverrides: true}
		cfg, err := Parse(data, opts)
		if err != nil {
			return
		}
		if len(cfg.Upstreams) == 0 {
			t.Fatal("accepted a config with no upstream")
		}
		if again, _ := Parse(data, opts); !reflect.DeepEqual(cfg, again) {
			t.Fatalf("the same text parsed twice differs:\n%+v\n%+v", cfg, again)
		}
		// Text that no escape, variable, secret file or !!binary can have
		// made: a client_id or client_secret made of it was written as it
		// is, and is not the reformatting of a number YAML read.
		verbatim := !bytes.ContainsAny(data, `\$`) && !bytes.Contains(data, []byte("binary")) && !bytes.Contains(data, []byte("_file"))
		for _, u := range cfg.Upstreams {
			if u.Target == nil || u.Token.URL == "" || u.Token.ClientID == "" || u.Token.ClientSecret == "" {
				t.Fatalf("accepted an incomplete upstream: %+v", u)
			}
			for _, v := range []string{u.Token.ClientID, u.Token.ClientSecret.Reveal()} {
				if verbatim && simpleToken.MatchString(v) && !bytes.Contains(data, []byte(v)) {
					t.Fatalf("%q is not in the text: %q", v, data)
				}
			}
		}
	})
}
