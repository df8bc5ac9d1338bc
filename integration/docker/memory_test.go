package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Loaded connections of TestServesLoadIn64MiB, and how long each keeps
// sending requests. The bounds keep the test under a minute.
const (
	loadConns    = 1000
	loadDuration = 15 * time.Second
)

// TestServesLoadIn64MiB: a container limited to 64 MiB (`--memory 64m`,
// no swap) serves 1,000 connections with a request in flight on each,
// half of them POSTing bodies kept for replay, without being OOM-killed:
// the memory limit the proxy derives from its cgroup (3/4 of it, app/gc.go)
// makes its collector keep up. It runs on the host's network namespace,
// listening on 127.0.0.1 only, in front of an API and token endpoint
// served by this test on 127.0.0.1.
func TestServesLoadIn64MiB(t *testing.T) {
	requireDocker(t)
	var grants, served atomic.Int64
	answer := bytes.Repeat([]byte("a"), 4<<10)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			fmt.Fprintf(w, `{"access_token":"mem-%d","token_type":"Bearer","expires_in":3600}`, grants.Add(1))
		case r.Header.Get("Authorization") == "":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			io.Copy(io.Discard, r.Body)
			served.Add(1)
			w.Write(answer)
		}
	}))
	defer api.Close()

	listen, admin := freeLoopback(t), freeLoopback(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // the proxy runs as uid 65532
	config := fmt.Sprintf(`listen: %s
admin: {listen: %s}
store: {type: file, path: /var/lib/authproxy/tokens.json}
upstreams:
  api:
    target: %s
    path_prefix: ""
    token: {url: "%s/token", client_id: mem, client_secret: mem-secret}
`, listen, admin, api.URL, api.URL)
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// The image's AUTHPROXY_LISTEN and _ADMIN_LISTEN (every interface)
	// would override the file: on the host's network, keep to loopback.
	id := docker(t, "run", "-d", "--label", projectPrefix, "--network", "host", "--memory", "64m", "--memory-swap", "64m",
		"-e", "AUTHPROXY_LISTEN="+listen, "-e", "AUTHPROXY_ADMIN_LISTEN="+admin,
		"-v", filepath.Join(dir, "proxy.yaml")+":/etc/authproxy/proxy.yaml:ro", "authproxy")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", "-v", id).Run() })
	eventually(t, time.Minute, "/readyz answering", func() (bool, string) {
		status, body := get("http://" + admin + "/readyz")
		return status == 200, fmt.Sprint(status, " ", body, " ", docker(t, "logs", "--tail", "5", id))
	})

	ok, failed := loadThrough(t, "http://"+listen)
	t.Logf("%d connections for %s: %d answers 200, %d failed; the API served %d; peak memory of the container %s", loadConns, loadDuration, ok, failed, served.Load(), peakMemory(id))

	state := docker(t, "inspect", "-f", "{{.State.OOMKilled}} {{.State.Running}} {{.State.ExitCode}}", id)
	if state != "false true 0" {
		t.Fatalf("after the load: OOMKilled, Running, ExitCode = %s; want false true 0\n%s", state, docker(t, "logs", "--tail", "20", id))
	}
	if failed > 0 || ok < loadConns {
		t.Errorf("%d requests failed, %d answered 200; want none failed, at least one per connection", failed, ok)
	}
	if status, body := get("http://" + listen + "/after"); status != 200 {
		t.Errorf("a request after the load: %d %s", status, body)
	}
	if grants.Load() != 1 {
		t.Errorf("%d tokens fetched; want 1", grants.Load())
	}
}

// loadThrough keeps loadConns connections busy for loadDuration, a
// request in flight on each (every other one a POST of 32 KiB), and
// returns the 200s and the failures.
func loadThrough(t *testing.T, base string) (ok, failed int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: loadConns, MaxConnsPerHost: loadConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	body := bytes.Repeat([]byte("b"), 32<<10)
	ctx, cancel := context.WithTimeout(context.Background(), loadDuration)
	defer cancel()
	var okN, failedN atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for i := range loadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var resp *http.Response
				var err error
				if i%2 == 0 {
					resp, err = client.Get(base + "/get")
				} else {
					resp, err = client.Post(base+"/post", "application/octet-stream", bytes.NewReader(body))
				}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						okN.Add(1)
						continue
					}
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				failedN.Add(1)
				firstErr.Do(func() { t.Logf("first failure: %v", err) })
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return okN.Load(), failedN.Load()
}

// peakMemory is the container's cgroup's peak memory use, where the
// engine's cgroup layout lets it be read; "unknown" elsewhere.
func peakMemory(id string) string {
	for _, path := range []string{
		"/sys/fs/cgroup/memory/docker/" + id + "/memory.max_usage_in_bytes",
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.peak",
	} {
		if data, err := os.ReadFile(path); err == nil {
			var n int64
			fmt.Sscan(strings.TrimSpace(string(data)), &n)
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		}
	}
	return "unknown"
}

// freeLoopback is a port on 127.0.0.1 nothing listens on now.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
