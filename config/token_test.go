package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRefreshTokenGrant(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rt"), []byte("seed-refresh\n"), 0o600)
	file := `
store: {type: file, path: tokens.json}
upstreams:
  redbooth:
    target: https://redbooth.com/api/3
    token:
      grant_type: refresh_token
      url: https://redbooth.com/oauth2/token
      client_id: id
      client_secret: sec
      refresh_token_file: rt
      authorize_url: https://redbooth.com/oauth2/authorize
      redirect_uri: http://localhost:8085/cb
  public:
    target: https://x
    token: {grant_type: refresh_token, url: "https://x/t", client_id: i}
`
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte(file), 0o600)
	cfg, err := Load(path, Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	rb := cfg.Upstreams[1].Token
	if rb.GrantType != "refresh_token" || rb.RefreshToken.Reveal() != "seed-refresh" || rb.AuthorizeURL != "https://redbooth.com/oauth2/authorize" ||
		rb.RedirectURI != "http://localhost:8085/cb" || cfg.Store.Path != filepath.Join(dir, "tokens.json") {
		t.Errorf("got %+v, store %+v", rb, cfg.Store)
	}
	if pub := cfg.Upstreams[0].Token; pub.ClientSecret != "" || pub.RedirectURI != "http://127.0.0.1:8085/callback" {
		t.Errorf("public client: %+v", pub)
	}
	bad := strings.Replace(strings.Replace(file, "localhost:8085", "example.com", 1), "type: file", "type: disk", 1)
	bad = strings.Replace(bad, "token: {grant_type: refresh_token,", "token: {refresh_token: x,", 1)
	os.WriteFile(path, []byte(bad), 0o600)
	_, err = Load(path, Options{NoEnvOverrides: true})
	for _, want := range []string{
		`store.type: "disk" is not allowed`,
		"upstreams.redbooth.token.redirect_uri: must be on this machine",
		"upstreams.public.token.grant_type: refresh_token, authorize_url and redirect_uri go with grant_type: refresh_token",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// writeSecretFileConfig writes dir/proxy.yaml: the minimal config with
// client_secret_file: secretFile; it returns its path.
func writeSecretFileConfig(t *testing.T, dir, secretFile string) string {
	t.Helper()
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: "+secretFile, 1)
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600)
	path := writeSecretFileConfig(t, dir, "secret")
	cfg, err := Load(path, Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Token.ClientSecret.Reveal(); got != "from-file" {
		t.Errorf("secret %q", got)
	}
	os.Remove(filepath.Join(dir, "secret"))
	if _, err := Load(path, Options{NoEnvOverrides: true}); err == nil ||
		!strings.Contains(err.Error(), "upstreams.api.token.client_secret_file: cannot read it") {
		t.Errorf("got %v", err)
	}
	both := strings.Replace(minimal, "client_secret: s3cret", "client_secret: a\n      client_secret_file: b", 1)
	if _, err := Parse([]byte(both), Options{NoEnvOverrides: true}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("got %v", err)
	}
}

// min_refresh_interval spaces the token requests made for expiry (issue
// 21 item 1); min_lifetime, the floor that made a 3 s token be sent for
// 30 s, is accepted with a warning that says to remove it, so that a
// config written for the release that had it still loads.
func TestTokenMinRefreshInterval(t *testing.T) {
	for _, tt := range []struct {
		yaml     string // the line under token:, if any
		want     time.Duration
		problem  string
		obsolete string
	}{
		{"", 500 * time.Millisecond, "", ""},
		{"      min_refresh_interval: 0s\n", 0, "", ""},
		{"      min_refresh_interval: 2s\n", 2 * time.Second, "", ""},
		{"      min_refresh_interval: 2m\n", 0, "upstreams.api.token.min_refresh_interval: must be between 0 and 1m0s; write e.g. 500ms", ""},
		{"      min_lifetime: 30s\n", 500 * time.Millisecond, "",
			"upstreams.api.token.min_lifetime: no longer used: a token is used only until it expires; remove it"},
	} {
		cfg, err := Parse([]byte(minimal+tt.yaml), Options{NoEnvOverrides: true})
		switch {
		case tt.problem != "":
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.problem)
			}
			continue
		case err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
			continue
		}
		tok := cfg.Upstreams[0].Token
		if tok.MinRefreshInterval != tt.want {
			t.Errorf("%q: min_refresh_interval %v, want %v", tt.yaml, tok.MinRefreshInterval, tt.want)
		}
		var obsolete string
		for _, o := range tok.Obsolete {
			obsolete += o.Key + ": " + o.Message
		}
		if tt.obsolete == "" && obsolete != "" || !strings.Contains(obsolete, tt.obsolete) {
			t.Errorf("%q: obsolete %q, want %q", tt.yaml, obsolete, tt.obsolete)
		}
	}
}

// A param may not stand in for a field the proxy sets itself, for any
// grant or client authentication: it would be overridden without a word,
// or sent beside the real one.
func TestParamsMayNotSetTheProxysFields(t *testing.T) {
	for _, field := range []string{"client_assertion", "client_assertion_type", "assertion", "subject_token", "subject_token_type",
		"actor_token", "actor_token_type", "requested_token_type", "username", "password", "code_verifier", "redirect_uri", "Client_Secret"} {
		yaml := "upstreams:\n  api:\n    target: https://api.example\n    token:\n      url: https://auth.example/token\n" +
			"      client_id: id\n      client_secret: s\n      params: {" + field + ": x}\n"
		_, err := Parse([]byte(yaml), Options{Lookup: func(string) (string, bool) { return "", false }})
		if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.params."+field+": is set by the proxy") {
			t.Errorf("params.%s: %v", field, err)
		}
	}
}

// A secret file is a secret, not a document: one over 64 KiB is a
// problem naming the key, not a secret of that size sent on every token
// request.
func TestASecretFileIsSmall(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte(strings.Repeat("s", 64<<10+1)), 0o600)
	_, err := Load(writeSecretFileConfig(t, dir, "secret"), Options{NoEnvOverrides: true})
	want := "upstreams.api.token.client_secret_file: " + filepath.Join(dir, "secret") + " is over 64 KiB"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %q", err, want)
	}
}

// token.token_type is the type of token the upstream takes (issue 21 item
// 5): Bearer by default; another (N_A, MAC) must be a header token, and
// cannot be presented with a format that says Bearer.
func TestTokenType(t *testing.T) {
	for _, tt := range []struct {
		yaml    string // lines under token:, then any after
		want    string
		problem string
	}{
		{"", "Bearer", ""},
		{"      token_type: bearer\n", "Bearer", ""},
		{"      token_type: N_A\n    inject: {format: \"{token}\"}\n", "N_A", ""},
		{"      token_type: MAC\n    inject: {format: \"{token_type} {token}\"}\n", "MAC", ""},
		{"      token_type: N_A\n", "", `upstreams.api.inject.format: "Bearer {token}" presents the token as Bearer, and token_type is N_A; write "{token_type} {token}", or "{token}" for the raw token`},
		{"      token_type: \"a b\"\n", "", `upstreams.api.token.token_type: "a b" is not a token type; write e.g. Bearer`},
		{"      token_type: DPoP\n", "", "upstreams.api.token.token_type: DPoP tokens need a proof of a key with every request (RFC 9449): write token.dpop.private_key_file"},
	} {
		cfg, err := Parse([]byte(minimal+tt.yaml), Options{NoEnvOverrides: true})
		switch {
		case tt.problem != "":
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.problem)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case cfg.Upstreams[0].Token.TokenType != tt.want:
			t.Errorf("%q: token_type %q, want %q", tt.yaml, cfg.Upstreams[0].Token.TokenType, tt.want)
		}
	}
}
