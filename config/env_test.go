package config

import (
	"strings"
	"testing"
)

// The AUTHPROXY_ overrides come from Options.Env, and the process's own
// variables are not looked at: a test, or a caller with an environment of
// its own, gives them without touching the process's.
func TestOverridesComeFromOptionsEnvNotTheProcess(t *testing.T) {
	file := `
listen: 127.0.0.1:1
upstreams:
  my-api:
    target: https://api.example
    token:
      url: https://api.example/token
      client_id: id
`
	t.Setenv("AUTHPROXY_LISTEN", "127.0.0.1:2")
	t.Setenv("AUTHPROXY_LOG_LEVEL", "error")
	t.Setenv("AUTHPROXY_UPSTREAMS_MY_API_TOKEN_CLIENT_SECRET", "from-the-process")
	env := lookup(map[string]string{
		"AUTHPROXY_LISTEN": ":9000",
		"AUTHPROXY_UPSTREAMS_MY_API_TOKEN_CLIENT_SECRET": "from-options", // absent from the file
		"AUTHPROXY_UPSTREAMS_MY_API_PATH_PREFIX":         "",             // empty: unset
	})
	cfg, err := Parse([]byte(file), Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams[0]
	if cfg.Listen != ":9000" || cfg.Log.Level != "info" || u.Token.ClientSecret.Reveal() != "from-options" || u.PathPrefix != "/my-api" {
		t.Errorf("listen %q, log.level %q, client_secret %q, path_prefix %q; want :9000, info, from-options, /my-api",
			cfg.Listen, cfg.Log.Level, u.Token.ClientSecret.Reveal(), u.PathPrefix)
	}

	// A problem with an overridden value names the variable that set it.
	_, err = Parse([]byte(file), Options{Env: lookup(map[string]string{"AUTHPROXY_LISTEN": "x", "AUTHPROXY_UPSTREAMS_MY_API_TOKEN_CLIENT_SECRET": "s"})})
	if want := `listen (from AUTHPROXY_LISTEN): "x" is not host:port`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want it to say %s", err, want)
	}

	// health reads admin.listen through the same overlay.
	addr, err := AdminListenOf("proxy.yaml", []byte(file), Options{Env: lookup(map[string]string{"AUTHPROXY_ADMIN_LISTEN": "127.0.0.1:7"})})
	if err != nil || addr != "127.0.0.1:7" {
		t.Errorf("AdminListenOf: %q, %v; want 127.0.0.1:7", addr, err)
	}
}

// A variable set for a key that the file writes as a mapping hides what
// the file has below it, and one set for a key the file has not is taken
// all the same, as viper's AutomaticEnv did.
func TestOverlayKeepsViperPrecedence(t *testing.T) {
	file := minimal + `    inject:
      headers:
        X-A: a
`
	cfg, err := Parse([]byte(file), Options{Env: lookup(map[string]string{
		"AUTHPROXY_UPSTREAMS_API_INJECT_HEADERS": "",     // empty: the file's stand
		"AUTHPROXY_UPSTREAMS_API_TOKEN_SCOPES":   "a, b", // a list written as text
	})})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams[0]
	if u.Inject.Headers["x-a"] != "a" || strings.Join(u.Token.Scopes, "|") != "a|b" {
		t.Errorf("headers %v, scopes %q", u.Inject.Headers, u.Token.Scopes)
	}
}

// A variable set for a section (AUTHPROXY_ADMIN, AUTHPROXY_UPSTREAMS, one
// upstream's inject) hides the file's section under it, and is refused as
// a scalar written there in the file is, naming the variable: it used to
// drop the section without a word (or say no upstream was configured).
func TestAVariableForASectionIsRefused(t *testing.T) {
	file := minimal + `    inject:
      headers:
        X-A: a
`
	for name, key := range map[string]string{
		"AUTHPROXY_ADMIN":                "admin",
		"AUTHPROXY_UPSTREAMS":            "upstreams",
		"AUTHPROXY_UPSTREAMS_API":        "upstreams.api",
		"AUTHPROXY_UPSTREAMS_API_INJECT": "upstreams.api.inject",
	} {
		_, err := Parse([]byte(file), Options{Env: lookup(map[string]string{name: `{"x": 1}`, "AUTHPROXY_UPSTREAMS_API_TARGET": "https://other.example"})})
		want := "1 problem:\n  " + key + " (from " + name + "): must be a mapping of keys, not text"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s set: %v\nwant %s", name, err, want)
		}
	}
	_, err := Parse([]byte("listen: 127.0.0.1:1\n"), Options{Env: lookup(map[string]string{"AUTHPROXY_UPSTREAMS": `{"a": {}}`})})
	if want := "upstreams (from AUTHPROXY_UPSTREAMS): must be a mapping of keys, not text"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("AUTHPROXY_UPSTREAMS with no upstreams in the file: %v\nwant %s", err, want)
	}
}

// A variable that sets a key inside a section the file writes as a
// scalar wins, every time (viper chose by the order of a map).
func TestOverlayWinsOverAScalarWhereASectionBelongs(t *testing.T) {
	for range 10 {
		cfg, err := Parse([]byte(minimal+"admin: 5\n"), Options{Env: lookup(map[string]string{"AUTHPROXY_ADMIN_LISTEN": "127.0.0.1:9"})})
		if err != nil || cfg.AdminListen != "127.0.0.1:9" {
			t.Fatalf("admin.listen of %+v, %v", cfg, err)
		}
	}
}
