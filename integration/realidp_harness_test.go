package integration

// The harness of the tests against a real authorization server
// (oidc-provider, see internal/oidctest): the proxy, run as a user runs
// it, gets its tokens there, and the API behind it accepts a token only if
// that server says it is active and the expected client's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/oidctest"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

// introspector is the API's own client at the provider, which it asks
// about the tokens it is shown (RFC 7662).
const (
	introspectorID     = "resource-server"
	introspectorSecret = "resource-server-secret-0123456789"
)

// realIdP is a running oidc-provider and the files a config names to
// reach it.
type realIdP struct {
	*oidctest.Server
	dir    string // where the test's files are written
	caFile string // the provider's CA, for token.tls.ca_file
}

func startRealIdP(t *testing.T, opts oidctest.Options) *realIdP {
	t.Helper()
	opts.Clients = append(opts.Clients, oidctest.Client{ID: introspectorID, Secret: introspectorSecret, AuthMethod: "client_secret_basic"})
	r := &realIdP{Server: oidctest.Start(t, opts), dir: t.TempDir()}
	r.caFile = r.write(t, "idp-ca.crt", r.CA.PEM, 0o644)
	return r
}

// write writes a file for the config to name, and returns its path.
func (r *realIdP) write(t *testing.T, name string, content []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path+".tmp", content, mode); err != nil {
		t.Fatal(err)
	}
	// Renamed into place, as the platforms write them: never half-read.
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiAnswer is what the API behind the proxy answers a token it accepts.
type apiAnswer struct {
	ClientID string `json:"client_id"`
	Path     string `json:"path"`
}

// api serves an API that accepts a bearer token only if the provider
// says it is active and issued to wantClient, and answers its client and
// the path; anything else gets 401. A token is asked about once, and
// believed until its exp.
func (r *realIdP) api(t *testing.T, wantClient string) string {
	hc := r.HTTPClient()
	var mu sync.Mutex
	known := map[string]tokenVerdict{}
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		v, ok := known[tok]
		mu.Unlock()
		if !ok || !time.Now().Before(v.exp) {
			v = r.introspect(hc, tok)
			if v.client != "" {
				mu.Lock()
				known[tok] = v
				mu.Unlock()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if v.client == "" || v.client != wantClient || !time.Now().Before(v.exp) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"invalid_token","client":%q}`, v.client)
			return
		}
		json.NewEncoder(w).Encode(apiAnswer{ClientID: v.client, Path: req.URL.Path})
	}))
}

// tokenVerdict is what the provider said of a token: its client, "" if
// it is not active, and when it expires.
type tokenVerdict struct {
	client string
	exp    time.Time
}

// introspect asks the provider about tok.
func (r *realIdP) introspect(hc *http.Client, tok string) (v tokenVerdict) {
	req, _ := http.NewRequest(http.MethodPost, r.IntrospectionURL, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(introspectorID, introspectorSecret)
	resp, err := hc.Do(req)
	if err != nil {
		return v
	}
	defer resp.Body.Close()
	var got struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
		Exp      int64  `json:"exp"`
	}
	if json.NewDecoder(resp.Body).Decode(&got) != nil || !got.Active {
		return v
	}
	v.client, v.exp = got.ClientID, time.Unix(got.Exp, 0)
	return v
}

// proxyRun is the real program, run in process on a config file.
type proxyRun struct {
	t     *testing.T
	addr  string // host:port
	admin string // the admin endpoints' base URL
	logs  *syncbuf.Buffer
	stop  func()
	// seen collects every response body and header value the test got,
	// for the search for secrets.
	seenMu sync.Mutex
	seen   []string
}

// runProxy writes configYAML to dir/proxy.yaml and runs the program on it
// until the test ends.
func runProxy(t *testing.T, dir, configYAML string) *proxyRun {
	t.Helper()
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proxyRun{t: t, logs: &syncbuf.Buffer{}}
	ready, adminReady := make(chan string, 1), make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- app.Run(ctx, app.Options{
			Args: []string{"--config", path}, Stdout: p.logs, Stderr: p.logs,
			Ready: func(addr string) { ready <- addr }, AdminReady: func(addr string) { adminReady <- addr },
			LookupEnv: func(string) (string, bool) { return "", false },
		})
	}()
	select {
	case p.addr = <-ready:
		p.admin = "http://" + <-adminReady
	case code := <-exit:
		cancel()
		t.Fatalf("proxy exited with %d before listening:\n%s", code, p.logs)
	}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			if code := <-exit; code != 0 {
				t.Errorf("proxy exited with %d, want 0", code)
			}
		})
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("proxy logs:\n%s", p.logs)
		}
	})
	return p
}

// get sends a GET to the proxy (a path starting with "/") or to a full
// URL, and keeps what came back for the search for secrets.
func (p *proxyRun) get(target string) (int, string) {
	p.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = "http://" + p.addr + target
	}
	resp, err := http.Get(target)
	if err != nil {
		p.t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p.seenMu.Lock()
	p.seen = append(p.seen, string(body))
	for k, vs := range resp.Header {
		p.seen = append(p.seen, k+": "+strings.Join(vs, ", "))
	}
	p.seenMu.Unlock()
	return resp.StatusCode, string(body)
}

// getAPI gets path through the proxy and decodes the API's answer.
func (p *proxyRun) getAPI(path string) (int, apiAnswer, string) {
	p.t.Helper()
	status, body := p.get(path)
	var a apiAnswer
	json.Unmarshal([]byte(body), &a)
	return status, a, body
}

// realIdPConfig starts a config whose upstreams reach the provider.
func realIdPConfig(extraTop string) string {
	return "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: debug, format: json}\nstore: {type: file, path: tokens.json}\n" + extraTop + "upstreams:\n"
}

// upstream writes one upstream of a config: its target, and the token
// lines (indented under token:) after the url.
func upstream(name, target, tokenURL, tokenLines string) string {
	return fmt.Sprintf("  %s:\n    target: %s\n    token:\n      url: %s\n%s", name, target, tokenURL, tokenLines)
}
