// Package integration runs the real authproxy program (app.Run, in
// process, on port 0) in front of the fake APIs of package fakeapi, on
// loopback, and checks what a user would see.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

const (
	clientID     = "integration-client"
	clientSecret = "integration-secret-d41d8cd98f00"
)

// env is one running proxy in front of one fake API.
type env struct {
	t      *testing.T
	api    *fakeapi.Server
	apiURL string
	url    string // the proxy's base URL, with the upstream's prefix
	addr   string // the proxy's host:port
	admin  string // the admin endpoints' base URL
	clock  *fakeclock.Clock
	logs   *syncbuf.Buffer
	client *http.Client

	flavor    fakeapi.Flavor
	config    string // the proxy.yaml path
	storePath string // the token store the config names
	stop      func() // stops the running proxy; safe to call again
}

// setup is how a test changes the generated config: extra token and
// upstream keys, as YAML lines.
type setup struct {
	topYAML      string // extra top-level lines
	tokenYAML    string // extra lines under token:
	upstreamYAML string // extra lines under the upstream
	secret       string // the secret the proxy is given; "" means the right one
	tokenURL     string // the token endpoint; "" means the fake's
	seedRefresh  bool   // give the proxy a valid refresh token in the config
	// wrapAPI, if set, serves in front of the fake API (to watch or bend
	// what it is sent).
	wrapAPI func(api http.Handler) http.Handler
}

// newServer serves h on loopback until the test ends and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// configFor writes the proxy.yaml a user would write for this flavor.
func configFor(t *testing.T, f fakeapi.Flavor, apiURL string, s setup) string {
	dir := t.TempDir()
	secret := s.secret
	if secret == "" {
		secret = clientSecret
	}
	// The secret comes from a file, as in production.
	secretFile := filepath.Join(dir, "client_secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	tokenURL := s.tokenURL
	if tokenURL == "" {
		tokenURL = apiURL + f.TokenPath
	}
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: debug, format: json}\n%supstreams:\n  %s:\n", s.topYAML, f.Name)
	fmt.Fprintf(&b, "    target: %s\n    path_prefix: /%s\n", apiURL, f.Name)
	fmt.Fprintf(&b, "    token:\n      url: %s\n      client_id: %s\n      client_secret_file: %s\n", tokenURL, clientID, secretFile)
	if f.JSONRequest {
		b.WriteString("      body_format: json\n")
	}
	if f.ThreeLegged {
		fmt.Fprintf(&b, "      grant_type: refresh_token\n      authorize_url: %s%s\n      redirect_uri: http://127.0.0.1:%d/callback\n",
			apiURL, f.AuthorizePath, freePort(t))
	}
	if f.BasicAuth {
		b.WriteString("      auth_method: client_secret_basic\n")
	}
	b.WriteString(s.tokenYAML)
	if f.RawAuthorization || len(f.RequiredHeaders) > 0 {
		b.WriteString("    inject:\n")
		if f.RawAuthorization {
			b.WriteString("      format: \"{token}\"\n")
		}
		b.WriteString("      headers:\n")
		for h, v := range f.RequiredHeaders {
			fmt.Fprintf(&b, "        %s: %q\n", h, v)
		}
	}
	b.WriteString(s.upstreamYAML)
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs a fake API of flavor f and the real proxy in front of it.
// At cleanup it stops the proxy, expects a clean exit, and checks that no
// secret or token reached the logs.
func start(t *testing.T, f fakeapi.Flavor, s setup) *env {
	t.Helper()
	clock := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	api := fakeapi.New(f, clientID, clientSecret, clock.Now)
	if s.seedRefresh {
		s.tokenYAML += "      refresh_token: " + api.SeedRefreshToken() + "\n"
	}
	var h http.Handler = api
	if s.wrapAPI != nil {
		h = s.wrapAPI(api)
	}
	apiURL := newServer(t, h)
	path := configFor(t, f, apiURL, s)
	tr := &http.Transport{MaxIdleConnsPerHost: 1000}
	e := &env{t: t, api: api, apiURL: apiURL, clock: clock, logs: &syncbuf.Buffer{}, flavor: f, config: path,
		storePath: filepath.Join(filepath.Dir(path), "data", "tokens.json"),
		client:    &http.Client{Transport: tr, Timeout: time.Minute}}
	e.launch()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		e.stop()
		e.assertNoSecretsIn("the logs", e.logs.String())
		if t.Failed() {
			t.Logf("proxy logs:\n%s", e.logs)
		}
	})
	return e
}

// launch runs the proxy on the env's config until stop.
func (e *env) launch() {
	e.t.Helper()
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- app.Run(ctx, app.Options{
			Args: []string{"--config", e.config}, Stdout: e.logs, Stderr: e.logs,
			Ready: func(addr string) { ready <- addr }, Now: e.clock.Now,
			AdminReady: func(addr string) { e.admin = "http://" + addr },
			LookupEnv:  func(string) (string, bool) { return "", false },
		})
	}()
	select {
	case addr := <-ready:
		e.addr, e.url = addr, "http://"+addr+"/"+e.flavor.Name
		var once sync.Once // a second caller waits for the first to finish
		e.stop = func() {
			once.Do(func() {
				cancel()
				if code := <-exit; code != 0 {
					e.t.Errorf("proxy exited with %d after SIGTERM-equivalent, want 0", code)
				}
			})
		}
	case code := <-exit:
		cancel()
		e.t.Fatalf("proxy exited with %d before listening:\n%s", code, e.logs)
	}
}

// restart stops the proxy and starts it again on the same config and store.
func (e *env) restart() {
	e.client.Transport.(*http.Transport).CloseIdleConnections()
	e.stop()
	e.launch()
}

func (e *env) assertNoSecretsIn(where, text string) {
	e.t.Helper()
	for _, s := range e.api.Secrets() {
		if s != "" && strings.Contains(text, s) {
			e.t.Errorf("%s contain a secret or token (%.6s...)", where, s)
		}
	}
}

// do sends a request through the proxy and returns the status and body.
func (e *env) do(method, path string, body []byte) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.assertNoSecretsIn("a response body", string(b))
	for k, vs := range resp.Header {
		e.assertNoSecretsIn("response header "+k, strings.Join(vs, " "))
	}
	return resp.StatusCode, b, resp.Header
}

// concurrently runs n requests at once and returns how many did not get 200.
func (e *env) concurrently(n int, method, path string, body []byte) int {
	e.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			req, _ := http.NewRequest(method, e.url+path, rd)
			resp, err := e.client.Do(req)
			ok := err == nil && resp.StatusCode == 200
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if !ok {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// waitFor polls cond until it holds; it waits for the proxy's background
// refresh, which no fake clock can make synchronous.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// releasedAtCleanup returns a channel that closes when release is first
// called, or at the latest at cleanup. A test that holds the fake API's
// handlers on it must get it after the fake API's server is started:
// cleanups run last-first, so the held handlers return before the server's
// Close, which waits for them. Without that a failing test hangs until the
// test binary's timeout instead of reporting its failure.
func releasedAtCleanup(t *testing.T) (held <-chan struct{}, release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return ch, release
}

// holdAPI makes the fake API hold every API request until release is called
// (see releasedAtCleanup), then answer with answer (a hook's return: true
// when it wrote the answer). arrived closes when the first request is held.
func holdAPI(t *testing.T, api *fakeapi.Server, answer func(w http.ResponseWriter) bool) (arrived <-chan struct{}, release func()) {
	first := make(chan struct{})
	var arrive sync.Once
	held, release := releasedAtCleanup(t)
	api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		arrive.Do(func() { close(first) })
		<-held
		return answer(w)
	})
	return first, release
}

// gateTokens holds every token answer of api until open is called (see
// releasedAtCleanup).
func gateTokens(t *testing.T, api *fakeapi.Server) (open func()) {
	gate, open := releasedAtCleanup(t)
	api.SetTokenGate(gate)
	return open
}
