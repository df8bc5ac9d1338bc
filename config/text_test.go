package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// coercedByYAML are values that YAML, unquoted, reads as something other
// than the text written: numbers in octal, hex, binary or exponent form,
// booleans, special floats, timestamps.
var coercedByYAML = []string{
	"012345", "0x1F", "0o17", "0b101", "+12", "-0", "1_000", "1e3", "1.50", "12345678901234567890123",
	"true", "True", "FALSE", ".inf", "-.Inf", ".nan",
	"2001-12-14", "2001-12-14T21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
	// Strings in this YAML library (YAML 1.2), booleans in YAML 1.1: kept
	// as text either way.
	"yes", "no", "on", "off", "y", "N",
}

// Every string-typed key keeps the exact text written, so that a secret
// such as 012345 is not sent as 5349.
func TestUnquotedValuesKeepTheirText(t *testing.T) {
	for _, v := range coercedByYAML {
		t.Run(v, func(t *testing.T) {
			// A key with a dot in it is a path to viper (a known limit).
			paramKey := v
			if strings.Contains(v, ".") {
				paramKey = "dotless"
			}
			file := `
upstreams:
  api:
    target: https://api.example
    token:
      url: https://api.example/token
      client_id: ` + v + `
      client_secret: ` + v + `
      scopes: [read, ` + v + `]
      params: {resource: ` + v + `, ` + paramKey + `: x}
    inject:
      headers: {X-Version: ` + v + `}
  user:
    target: https://user.example
    token:
      grant_type: refresh_token
      url: https://user.example/token
      client_id: id
      refresh_token: ` + v + `
inbound:
  api_keys: [` + v + `, "0123456789abcdef0123"]
`
			cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
			if v == "0b101" || v == "+12" || v == "-0" || len(v) < 16 {
				// Too short for an API key: that is the only complaint.
				if err == nil || strings.Count(err.Error(), "\n") != 1 || !strings.Contains(err.Error(), "inbound.api_keys[0]: is shorter than 16 characters") {
					t.Fatalf("got %v", err)
				}
				cfg, err = Parse([]byte(strings.Replace(file, "api_keys: ["+v+", ", "api_keys: [", 1)), Options{NoEnvOverrides: true})
			}
			if err != nil {
				t.Fatal(err)
			}
			tok := cfg.Upstreams[0].Token
			if tok.ClientSecret.Reveal() != v || tok.ClientID != v {
				t.Errorf("client_secret %q, client_id %q", tok.ClientSecret.Reveal(), tok.ClientID)
			}
			if !reflect.DeepEqual(tok.Scopes, []string{"read", v}) {
				t.Errorf("scopes %q", tok.Scopes)
			}
			if want := map[string]string{"resource": v, paramKey: "x"}; !reflect.DeepEqual(tok.Params, want) {
				t.Errorf("params %q", tok.Params)
			}
			if got := cfg.Upstreams[0].Inject.Headers["x-version"]; got != v {
				t.Errorf("inject.headers %q", cfg.Upstreams[0].Inject.Headers)
			}
			if got := cfg.Upstreams[1].Token.RefreshToken.Reveal(); got != v {
				t.Errorf("refresh_token %q", got)
			}
			if len(v) >= 16 && cfg.Inbound.APIKeys[0].Reveal() != v {
				t.Errorf("api_keys %q", cfg.Inbound.APIKeys[0].Reveal())
			}
		})
	}
}

// A null is no value: the key is unset, and a required one says so.
func TestNullIsUnset(t *testing.T) {
	for _, v := range []string{"~", "null", "Null", ""} {
		file := strings.Replace(minimal, "client_secret: s3cret", "client_secret: "+v, 1)
		_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
		if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.client_secret: required") {
			t.Errorf("%q: %v", v, err)
		}
	}
}

// Merge keys and anchors are followed: a value reached through them
// keeps its text too.
func TestAnchorsAndMergeKeysKeepTheirText(t *testing.T) {
	file := `
upstreams:
  a:
    target: https://a.example
    token: &tok
      url: https://a.example/token
      client_id: &id 0012
      client_secret: 012345
  b:
    target: https://b.example
    token:
      <<: *tok
      client_secret: 1e3
      scopes: [*id]
`
	cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Upstreams[0].Token, cfg.Upstreams[1].Token
	if a.ClientID != "0012" || a.ClientSecret.Reveal() != "012345" || b.ClientID != "0012" || b.ClientSecret.Reveal() != "1e3" ||
		!reflect.DeepEqual(b.Scopes, []string{"0012"}) || b.URL != "https://a.example/token" {
		t.Errorf("a %+v %q, b %+v %q", a, a.ClientSecret.Reveal(), b, b.ClientSecret.Reveal())
	}
}

// Keys that are not text (durations, sizes) keep their text as well, so a
// number that YAML would convert is reported as written, not as its value.
func TestUnquotedNumbersInOtherKeysAreReportedAsWritten(t *testing.T) {
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret: s3cret\n      timeout: 0x10\n    replay: {max_body: 1e3}", 1)
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	for _, want := range []string{`upstreams.api.token.timeout: "0x10" is not a duration`, `upstreams.api.replay.max_body: "1e3" is not a size`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// Other formats have no node tree to read the text from: a value that is
// not text where text is wanted is refused, naming the key and not the
// value (it may be a secret).
func TestOtherFormatsRefuseNumbersForText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.json")
	os.WriteFile(path, []byte(`{"upstreams": {"api": {"target": "https://x", "token": {"url": "https://x/t", "client_id": true,
		"client_secret": 98765, "scopes": ["a", 2], "params": {"p": 1.5}}}}}`), 0o600)
	_, err := Load(path, Options{NoEnvOverrides: true})
	for _, want := range []string{
		"upstreams.api.token.client_secret: is a number, not text; write it in quotes",
		"upstreams.api.token.client_id: is a boolean, not text; write it in quotes",
		"upstreams.api.token.scopes[1]: is a number, not text; write it in quotes",
		"upstreams.api.token.params.p: is a number, not text; write it in quotes",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "98765") {
		t.Errorf("the error shows the secret: %v", err)
	}
}

// A hex key of digits only is a number to YAML, one too large for any
// integer type.
func TestAnEncryptionKeyOfDigitsOnly(t *testing.T) {
	const key = "0123456789012345678901234567890123456789012345678901234567890123"
	file := "store: {type: redis, url: \"redis://127.0.0.1:6379/0\", encryption_key: " + key + "}\n" + minimal
	cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Store.EncryptionKey.Reveal(); got != "\x01\x23\x45\x67\x89\x01\x23\x45\x67\x89\x01\x23\x45\x67\x89\x01\x23\x45\x67\x89\x01\x23\x45\x67\x89\x01\x23\x45\x67\x89\x01\x23" {
		t.Errorf("key %x", got)
	}
}

func TestParamNamesKeepTheirCase(t *testing.T) {
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret: s3cret\n      params: {resourceId: r1, Audience: a}", 1)
	cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"resourceId": "r1", "Audience": "a"}; !reflect.DeepEqual(cfg.Upstreams[0].Token.Params, want) {
		t.Errorf("params %v", cfg.Upstreams[0].Token.Params)
	}
}
