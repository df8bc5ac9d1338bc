package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExampleConfigLoads(t *testing.T) {
	env := map[string]string{}
	for _, api := range []string{"REDGIFS", "PRODUCTHUNT", "TEENQUOTES", "REDBOOTH"} {
		env[api+"_CLIENT_ID"] = strings.ToLower(api) + "-id"
		env[api+"_CLIENT_SECRET"] = strings.ToLower(api) + "-secret"
	}
	cfg, err := Load("../proxy.yaml", Options{Lookup: lookup(env), NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Upstreams) != 4 {
		t.Fatalf("%d upstreams", len(cfg.Upstreams))
	}
	ph, rg := cfg.Upstreams[0], cfg.Upstreams[2]
	if ph.Name != "producthunt" || ph.Token.BodyFormat != "json" || ph.Token.ClientSecret.Reveal() != "producthunt-secret" ||
		ph.PathPrefix != "/producthunt" || ph.Token.URL != "https://api.producthunt.com/v2/oauth/token" {
		t.Errorf("producthunt: %+v", ph)
	}
	if rg.Name != "redgifs" || rg.Target.String() != "https://api.redgifs.com" || rg.Token.RefreshBefore != 10*time.Minute ||
		rg.Replay.MaxBody != 1<<20 || !reflect.DeepEqual(rg.Replay.OnStatus, []int{401}) || rg.Inject.Format != "Bearer {token}" {
		t.Errorf("redgifs: %+v", rg)
	}
}

const minimal = `
upstreams:
  api:
    target: https://api.example
    token:
      url: https://api.example/token
      client_id: id
      client_secret: s3cret
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9090", Log: Log{Level: "info", Format: "json"}, ShutdownTimeout: 30 * time.Second,
		Inbound: Inbound{APIKeyHeader: "X-Authproxy-Key", ForwardedHeaders: "drop"},
		Store:   Store{Type: "file", Path: "data/tokens.json"},
		Limits: Limits{MaxHeaderBytes: 64 << 10, ReadHeaderTimeout: 10 * time.Second, MaxRequestBody: 10 << 20, IdleTimeout: 2 * time.Minute,
			ReplayMemory: 64 << 20, BodyReadTimeout: 30 * time.Second},
		ForwardProxy: ForwardProxy{MaxTunnels: 1024},
		Upstreams: []Upstream{{
			Name: "api", Target: cfg.Upstreams[0].Target, PathPrefix: "/api", Timeout: time.Minute, IdleTimeout: 5 * time.Minute, MaxConnections: MaxConnectionsAuto,
			Hosts: []string{"api.example:443"}, // the forward proxy reaches an upstream by its target's host
			Token: Token{GrantType: "client_credentials", URL: "https://api.example/token", ClientID: "id", ClientSecret: "s3cret",
				AuthMethod: "client_secret_post", BodyFormat: "form", RefreshBefore: 10 * time.Minute, TokenType: "Bearer", MinRefreshInterval: 500 * time.Millisecond,
				Timeout: 10 * time.Second},
			Inject: Inject{Header: "Authorization", Format: "Bearer {token}"},
			Replay: Replay{OnStatus: []int{401}, MaxBody: 1 << 20},
		}},
		Digest: Digest([]byte(minimal)),
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %#v\nwant %#v", cfg, want)
	}
}

func TestEnvironmentOverridesEveryKey(t *testing.T) {
	file := `
listen: 127.0.0.1:1
upstreams:
  my-api:
    target: https://api.example
    token:
      url: https://api.example/token
      client_id: id
`
	t.Setenv("AUTHPROXY_LISTEN", ":9000")
	t.Setenv("AUTHPROXY_LOG_LEVEL", "debug")
	t.Setenv("AUTHPROXY_UPSTREAMS_MY_API_TOKEN_CLIENT_SECRET", "from-env") // absent from the file
	t.Setenv("AUTHPROXY_UPSTREAMS_MY_API_TOKEN_SCOPES", "read,write")
	t.Setenv("AUTHPROXY_UPSTREAMS_MY_API_REPLAY_ON_STATUS", "401,403")
	t.Setenv("AUTHPROXY_UPSTREAMS_MY_API_PATH_PREFIX", "/v1")
	cfg, err := Parse([]byte(file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams[0]
	if cfg.Listen != ":9000" || cfg.Log.Level != "debug" || u.Token.ClientSecret.Reveal() != "from-env" ||
		!reflect.DeepEqual(u.Token.Scopes, []string{"read", "write"}) || !reflect.DeepEqual(u.Replay.OnStatus, []int{401, 403}) ||
		u.PathPrefix != "/v1" {
		t.Errorf("got %+v / %+v", cfg, u)
	}
}

func TestAllProblemsReportedTogether(t *testing.T) {
	file := `
listen: nonsense
log: {level: loud}
upstreams:
  api:
    target: ftp://x
    path_prefix: /a/../b
    token:
      url: /relative
      clientsecret: oops
      timeout: "10"
      auth_method: basic
      params: {grant_type: password}
    inject: {format: "Bearer", header: "Bad Header"}
    replay: {on_status: [200], max_body: lots}
    colour: blue
  other:
    target: https://x
    path_prefix: /a/../b
    token: {url: "https://x/t", client_id: i, client_secret: s, refresh_before: soon}
`
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`listen: "nonsense" is not host:port`,
		`log.level: "loud" is not allowed; write one of debug, info, warn, error`,
		`upstreams.api.colour: unknown key`,
		`upstreams.api.token.clientsecret: unknown key; did you mean "client_secret", which is required and not set?`,
		`upstreams.api.target: "ftp://x" is not an absolute http(s) URL`,
		`upstreams.api.path_prefix: "/a/../b" is not a plain path`,
		`upstreams.api.token.url: "/relative" is not an absolute http(s) URL`,
		`upstreams.api.token.client_id: required`,
		`upstreams.api.token.timeout: "10" is not a duration; write it with a unit, like 30s`,
		`upstreams.api.token.auth_method: "basic" is not allowed; write one of client_secret_post, client_secret_basic`,
		`upstreams.api.token.params.grant_type: is set by the proxy`,
		`upstreams.api.inject.header: "Bad Header" is not a header name`,
		`upstreams.api.inject.format: "Bearer" must contain {token}`,
		`upstreams.api.replay.on_status[0]: 200 is not an error status`,
		`upstreams.api.replay.max_body: "lots" is not a size; write e.g. 1MiB`,
		`upstreams.other.token.refresh_before: "soon" is not a duration`,
		`upstreams.other.path_prefix: "/a/../b" is also the prefix of upstream "api"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q", want)
		}
	}
	if strings.Contains(msg, "upstreams.api.token.client_secret:") {
		t.Error("the misspelt client_secret is reported twice: as unknown, and as required")
	}
	if strings.Contains(msg, "oops") {
		t.Error("the error shows the value of a misspelt secret key")
	}
	if t.Failed() {
		t.Log(msg)
	}
}

func TestInboundAndLimits(t *testing.T) {
	file := minimal + `
inbound:
  api_keys: ["0123456789abcdef0123", short]
  allow_cidrs: [10.0.0.0/8, 127.0.0.1, "::1", nonsense]
  forwarded_headers: append
limits: {max_header_bytes: 16KiB, max_request_body: 0, read_header_timeout: 0s, replay_memory: 16MiB, body_read_timeout: 5s}
`
	_, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	for _, want := range []string{
		"inbound.api_keys[1]: is shorter than 16 characters",
		`inbound.allow_cidrs[3]: "nonsense" is not an address or CIDR`,
		"limits.read_header_timeout: must be more than 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	file = strings.Replace(strings.Replace(strings.Replace(file, ", short", "", 1), ", nonsense", "", 1), "read_header_timeout: 0s", "read_header_timeout: 5s", 1)
	cfg, err := Parse([]byte(file), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Inbound
	if len(in.APIKeys) != 1 || in.APIKeys[0].Reveal() != "0123456789abcdef0123" || in.ForwardedHeaders != "append" ||
		fmt.Sprint(in.AllowCIDRs) != "[10.0.0.0/8 127.0.0.1/32 ::1/128]" {
		t.Errorf("inbound %+v", in)
	}
	if cfg.Limits.MaxHeaderBytes != 16<<10 || cfg.Limits.MaxRequestBody != 0 || cfg.Limits.ReadHeaderTimeout != 5*time.Second ||
		cfg.Limits.ReplayMemory != 16<<20 || cfg.Limits.BodyReadTimeout != 5*time.Second {
		t.Errorf("limits %+v", cfg.Limits)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", cfg, cfg.Inbound), "0123456789abcdef") {
		t.Error("formatting the config shows an API key")
	}
}

func TestConfigFormattingRedactsSecrets(t *testing.T) {
	cfg, err := Parse([]byte(minimal), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg.Upstreams, cfg.Upstreams); strings.Contains(s, "s3cret") {
		t.Errorf("formatted config leaks the secret: %s", s)
	}
}
