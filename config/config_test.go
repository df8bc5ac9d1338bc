package config

import (
	"fmt"
	"os"
	"path/filepath"
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
		Upstreams: []Upstream{{
			Name: "api", Target: cfg.Upstreams[0].Target, PathPrefix: "/api", Timeout: time.Minute, IdleTimeout: 5 * time.Minute,
			Token: Token{GrantType: "client_credentials", URL: "https://api.example/token", ClientID: "id", ClientSecret: "s3cret",
				AuthMethod: "client_secret_post", BodyFormat: "form", RefreshBefore: 10 * time.Minute, MinLifetime: 30 * time.Second,
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
		`upstreams.api.token.clientsecret: unknown key; did you mean "client_secret"?`,
		`upstreams.api.target: "ftp://x" is not an absolute http(s) URL`,
		`upstreams.api.path_prefix: "/a/../b" is not a plain path`,
		`upstreams.api.token.url: "/relative" is not an absolute http(s) URL`,
		`upstreams.api.token.client_id: required`,
		`upstreams.api.token.client_secret: required`,
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

func TestEnvironmentExpansion(t *testing.T) {
	file := strings.Replace(minimal, "client_id: id", "client_id: ${API_ID}-$${literal}", 1)
	cfg, err := Parse([]byte(file), Options{Lookup: lookup(map[string]string{"API_ID": "abc"}), NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Token.ClientID; got != "abc-${literal}" {
		t.Errorf("client_id %q", got)
	}
	_, err = Parse([]byte(strings.Replace(minimal, "s3cret", "${MISSING_SECRET}", 1)), Options{Lookup: lookup(nil), NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "upstreams.api.token.client_secret: environment variable MISSING_SECRET is not set") {
		t.Errorf("got %v", err)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600)
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: secret", 1)
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte(file), 0o600)
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

func TestConfigFormattingRedactsSecrets(t *testing.T) {
	cfg, err := Parse([]byte(minimal), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg.Upstreams, cfg.Upstreams); strings.Contains(s, "s3cret") {
		t.Errorf("formatted config leaks the secret: %s", s)
	}
}

func TestRedisStore(t *testing.T) {
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	file := "store:\n  type: redis\n  url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0\n  encryption_key: ${STORE_KEY}\n" + minimal
	env := map[string]string{"REDIS_PASSWORD": "pa55", "STORE_KEY": key}
	cfg, err := Parse([]byte(file), Options{Lookup: lookup(env), NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Store
	if st.Type != "redis" || st.URL.Reveal() != "redis://:pa55@127.0.0.1:6379/0" || st.KeyPrefix != "authproxy:" ||
		st.LockTTL != 15*time.Second || st.Mode != "standalone" || st.EncryptionKey.Reveal() != "0123456789abcdef0123456789abcdef" || st.Path != "" {
		t.Errorf("store %+v", st)
	}
	if s := fmt.Sprintf("%v %+v", cfg, st); strings.Contains(s, "pa55") || strings.Contains(s, "0123456789abcdef") {
		t.Errorf("formatting the store shows a secret: %s", s)
	}

	bad := "store:\n  type: redis\n  url: http://user:pa55@host\n  lock_ttl: 5s\n  encryption_key: short\n" + minimal
	_, err = Parse([]byte(bad), Options{NoEnvOverrides: true})
	for _, want := range []string{
		"store.url: is not a Redis URL; write e.g. redis://127.0.0.1:6379/0",
		"store.lock_ttl: 5s is not longer than upstreams.api.token.timeout (10s)",
		"store.encryption_key: must be 32 random bytes in base64 (44 characters) or hex (64); make one with: openssl rand -base64 32",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "pa55") {
		t.Errorf("the error quotes the URL's password: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: redis\n  mode: sentinel\n  url: redis://s1:26379/0\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "with mode: sentinel, the URL is a sentinel's and names the master") {
		t.Errorf("sentinel without master_name: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: redis\n  mode: replicated\n  url: redis://s1:26379/0\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), `store.mode: "replicated" is not allowed; write one of standalone, sentinel, cluster`) {
		t.Errorf("bad mode: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: redis\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "store.url: required") {
		t.Errorf("no url: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: file\n  key_prefix: x\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "store.key_prefix: applies only to store.type: redis") {
		t.Errorf("a redis key on a file store: %v", err)
	}
}
