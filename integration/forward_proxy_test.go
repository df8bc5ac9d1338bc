package integration

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/syncbuf"
	"github.com/authproxy/authproxy/internal/testpki"
	"github.com/authproxy/authproxy/pki"
)

// apiName is the name by which the apps call the fake API. No resolver
// knows it: the apps send it to the forward proxy (CONNECT
// api.test.example:443), which maps it to the upstream's target on
// 127.0.0.1, so nothing leaves loopback.
const apiName = "api.test.example"

// forwardEnv is the real program with its forward proxy on, in front of
// the redbooth fake (rotating refresh tokens) served over HTTPS with a
// certificate from a test CA that the upstream's tls.ca_file names.
type forwardEnv struct {
	api     *fakeapi.Server
	logs    *syncbuf.Buffer
	forward string // the forward proxy's host:port
	reverse string // the proxy's own listener's host:port
	admin   string // the admin endpoints' base URL
	caFile  string // the forward proxy's CA certificate, for the apps
	dir     string
}

func startForwardProxy(t *testing.T, extraTop string) *forwardEnv {
	t.Helper()
	clock := fakeclock.New(time.Now())
	f := fakeapi.Redbooth()
	api := fakeapi.New(f, clientID, clientSecret, clock.Now)
	api.SetRevokeOnUse(true) // a refresh token redeemed twice fails: rotation must be followed
	upstreamCA := testpki.NewCA(t, "upstream CA")
	srv := httptest.NewUnstartedServer(api)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{upstreamCA.Loopback(t).TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	fe := &forwardEnv{api: api, logs: &syncbuf.Buffer{}, dir: t.TempDir()}
	upstreamCAFile := filepath.Join(fe.dir, "upstream-ca.pem")
	os.WriteFile(upstreamCAFile, upstreamCA.PEM, 0o644)
	certPath, keyPath, err := pki.WriteCA(filepath.Join(fe.dir, "ca"), []string{"test.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fe.caFile = certPath
	top := "forward_proxy:\n  listen: 127.0.0.1:0\n  ca_cert_file: " + certPath + "\n  ca_key_file: " + keyPath + "\n" + extraTop
	path := configFor(t, f, srv.URL, setup{
		topYAML:      top,
		tokenYAML:    "      refresh_token: " + api.SeedRefreshToken() + "\n      tls: {ca_file: " + upstreamCAFile + "}\n",
		upstreamYAML: "    tls: {ca_file: " + upstreamCAFile + "}\n    hosts: [" + apiName + "]\n",
	})
	ready, fwd, adm := make(chan string, 1), make(chan string, 1), make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- app.Run(ctx, app.Options{
			Args: []string{"--config", path}, Stdout: fe.logs, Stderr: fe.logs,
			Ready: func(addr string) { ready <- addr }, ForwardReady: func(addr string) { fwd <- addr }, Now: clock.Now,
			AdminReady: func(addr string) { adm <- "http://" + addr },
			LookupEnv:  func(string) (string, bool) { return "", false },
		})
	}()
	select {
	case fe.reverse = <-ready:
		fe.forward, fe.admin = <-fwd, <-adm
	case code := <-exit:
		cancel()
		t.Fatalf("proxy exited with %d before listening:\n%s", code, fe.logs)
	}
	t.Cleanup(func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("proxy exited with %d, want 0", code)
		}
		for _, s := range api.Secrets() {
			if s != "" && strings.Contains(fe.logs.String(), s) {
				t.Errorf("the logs contain a secret or token (%.6s...)", s)
			}
		}
		if t.Failed() {
			t.Logf("proxy logs:\n%s", fe.logs)
		}
	})
	return fe
}

// env is what an unmodified app is given: the proxy and the CA file,
// nothing else of the parent's but PATH and HOME.
func (fe *forwardEnv) env(proxyURL string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"HTTPS_PROXY=" + proxyURL, "https_proxy=" + proxyURL, "HTTP_PROXY=" + proxyURL, "http_proxy=" + proxyURL,
		"CURL_CA_BUNDLE=" + fe.caFile, "SSL_CERT_FILE=" + fe.caFile, "NODE_EXTRA_CA_CERTS=" + fe.caFile,
	}
}

// requireClient finds an app's program, or skips (fails with
// AUTHPROXY_REQUIRE_CLIENTS set, as .ci/run sets it).
func requireClient(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("AUTHPROXY_REQUIRE_CLIENTS") != "" {
			t.Fatalf("%s is not installed (and AUTHPROXY_REQUIRE_CLIENTS is set)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

var goClient struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildGoClient builds testdata/goclient, once per test binary.
func buildGoClient(t *testing.T) string {
	t.Helper()
	goClient.once.Do(func() {
		dir, err := os.MkdirTemp("", "goclient")
		if err != nil {
			goClient.err = err
			return
		}
		goClient.path = filepath.Join(dir, "goclient")
		goClient.out, goClient.err = exec.Command("go", "build", "-o", goClient.path, "./testdata/goclient").CombinedOutput()
	})
	if goClient.err != nil {
		t.Fatalf("go build ./testdata/goclient: %v\n%s", goClient.err, goClient.out)
	}
	return goClient.path
}

// nodePreload is what a Node.js 20 app is started with to honour
// HTTPS_PROXY, which Node 20's http and https modules do not: global-agent,
// preloaded with -r, reading HTTP(S)_PROXY (its namespace set empty). The
// app's code is unchanged.
func nodePreload(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("testdata/nodeproxy")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "global-agent")); err != nil {
		out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefix", dir).CombinedOutput()
		if err != nil {
			if os.Getenv("AUTHPROXY_REQUIRE_CLIENTS") != "" {
				t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
			}
			t.Skipf("npm ci in %s: %v", dir, err)
		}
	}
	return filepath.Join(dir, "preload.js")
}

// apps are the real clients, each calling the API twice in one run.
func apps(t *testing.T) map[string]func(urls ...string) *exec.Cmd {
	return map[string]func(urls ...string) *exec.Cmd{
		"curl": func(urls ...string) *exec.Cmd {
			return exec.Command(requireClient(t, "curl"), append([]string{"-sS", "--fail-with-body", "-w", "\n"}, urls...)...)
		},
		"python": func(urls ...string) *exec.Cmd {
			return exec.Command(requireClient(t, "python3"), append([]string{"-c",
				"import sys, urllib.request\nfor u in sys.argv[1:]: print(urllib.request.urlopen(u).read().decode())"}, urls...)...)
		},
		"go": func(urls ...string) *exec.Cmd { return exec.Command(buildGoClient(t), urls...) },
		"node": func(urls ...string) *exec.Cmd {
			script := `const https = require("https");
(async () => { for (const u of process.argv.slice(1)) { await new Promise((ok, fail) => https.get(u, r => {
  let b = ""; r.on("data", d => b += d); r.on("end", () => { console.log(r.statusCode, b); ok(); }); }).on("error", fail)); } })()
  .catch(e => { console.error(e.message); process.exit(1); });`
			cmd := exec.Command(requireClient(t, "node"), append([]string{"-r", nodePreload(t), "-e", script}, urls...)...)
			cmd.Env = append(cmd.Env, "GLOBAL_AGENT_ENVIRONMENT_VARIABLE_NAMESPACE=")
			return cmd
		},
	}
}

// Each real client, unmodified, given only HTTPS_PROXY and the CA file,
// reaches the HTTPS API by its name through a tunnel and gets its answer:
// the token is attached, a revoked one is refreshed (rotating the refresh
// token) and the request replayed, inside the tunnel.
func TestForwardProxyRealClients(t *testing.T) {
	fe := startForwardProxy(t, "")
	// After each answered request the API revokes every access token:
	// the next request is refused once, and replayed with a fresh token.
	fe.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		fe.api.RevokeAll()
		return false
	})
	url := "https://" + apiName + "/api/3/me"
	for _, name := range []string{"curl", "python", "go", "node"} {
		t.Run(name, func(t *testing.T) {
			before := len(fe.api.APIRequests())
			cmd := apps(t)[name](url, url+"?second")
			cmd.Env = append(fe.env("http://"+fe.forward), cmd.Env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, out)
			}
			if n := strings.Count(string(out), `"authenticated":true`); n != 2 {
				t.Errorf("%s got %d authenticated answers, want 2:\n%s", name, n, out)
			}
			seen := fe.api.APIRequests()[before:]
			replays := 0
			for i, r := range seen {
				if r.Host != "" && strings.Contains(r.Host, apiName) {
					t.Errorf("the API was sent Host %q: the proxy must send the target's", r.Host)
				}
				if !r.Authorized && i+1 < len(seen) && seen[i+1].Authorized {
					replays++
				}
			}
			if replays < 1 {
				t.Errorf("%s: no refused-then-replayed request among %d", name, len(seen))
			}
		})
	}
	for rt, n := range fe.api.Redemptions() {
		if n > 1 {
			t.Errorf("refresh token %.6s... redeemed %d times: a rotation was lost", rt, n)
		}
	}
	if !strings.Contains(fe.logs.String(), `"mode":"forward"`) || !strings.Contains(fe.logs.String(), `"host":"api.test.example:443"`) {
		t.Error("the access log does not say mode forward and the host")
	}
	// /status and the metrics say which way requests came in, and the host.
	status := get(t, fe.admin+"/status")
	for _, want := range []string{`"forward_hosts":["api.test.example:443","api.test.example:80"]`, `"reverse":0`, `"last_forward_host":"api.test.example:443"`} {
		if !strings.Contains(status, want) {
			t.Errorf("/status lacks %s:\n%s", want, status)
		}
	}
	if m := get(t, fe.admin+"/metrics"); !strings.Contains(m, `authproxy_forward_requests_total{host="api.test.example:443",status="200",upstream="redbooth"}`) {
		t.Errorf("metrics lack the forward requests:\n%s", m)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A real client asking for a host no upstream lists is refused with 403,
// and nothing reaches the API; a client without the proxy key gets 407.
func TestForwardProxyRefusalsWithCurl(t *testing.T) {
	const key = "forward-proxy-key-0123456789"
	fe := startForwardProxy(t, "inbound: {api_keys: ["+key+"]}\n")
	curl := requireClient(t, "curl")
	run := func(proxyURL string, args ...string) string {
		cmd := exec.Command(curl, append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{http_connect}"}, args...)...)
		cmd.Env = fe.env(proxyURL)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	withKey := "http://app:" + key + "@" + fe.forward
	if out := run(withKey, "https://evil.example/x"); !strings.Contains(out, "403") {
		t.Errorf("unlisted host: %s, want the CONNECT refused with 403", out)
	}
	if out := run(withKey, "https://"+apiName+":8443/x"); !strings.Contains(out, "403") {
		t.Errorf("listed host on another port: %s, want 403", out)
	}
	if out := run("http://"+fe.forward, "https://"+apiName+"/api/3/me"); !strings.Contains(out, "407") {
		t.Errorf("no proxy key: %s, want 407", out)
	}
	if out := run("http://app:wrong-key-0123456789@"+fe.forward, "http://"+apiName+"/api/3/me"); !strings.HasPrefix(out, "407") {
		t.Errorf("wrong proxy key, plain http: %s, want 407", out)
	}
	if n := len(fe.api.APIRequests()); n != 0 {
		t.Errorf("the API got %d requests from refused clients", n)
	}
	if out := run(withKey, "https://"+apiName+"/api/3/me"); !strings.HasPrefix(out, "200") {
		t.Errorf("with the key: %s, want 200", out)
	}
	for _, r := range fe.api.APIRequests() {
		if r.Header.Get("Proxy-Authorization") != "" {
			t.Error("Proxy-Authorization reached the API")
		}
	}
	if strings.Contains(fe.logs.String(), key) {
		t.Error("the proxy key is in the logs")
	}
}
