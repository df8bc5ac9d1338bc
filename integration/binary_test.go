package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

// buildBinary builds authproxy as a user would.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "authproxy")
	cmd := exec.Command("go", "build", "-o", bin, "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryDemoServesAuthenticatedRequests is the README's first command:
// with no config, the binary runs the fake APIs and proxies to them.
func TestBinaryDemoServesAuthenticatedRequests(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "AUTHPROXY_LISTEN=127.0.0.1:0", "AUTHPROXY_ADMIN_LISTEN=127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := bufio.NewScanner(stderr)
	addrRE := regexp.MustCompile(`msg="authproxy listening" addr="([^"]+)"`)
	var addr string
	var logged strings.Builder
	for addr == "" && lines.Scan() {
		logged.WriteString(lines.Text() + "\n")
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no listening line:\n%s", logged.String())
	}
	rest := make(chan string)
	go func() { b, _ := io.ReadAll(stderr); rest <- string(b) }()

	for _, f := range fakeapi.All() {
		resp, err := http.Get("http://" + addr + "/" + f.Name + f.APIPath)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			API           string
			Authenticated bool
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || !got.Authenticated || got.API != f.Name {
			t.Errorf("%s: status %d, %+v", f.Name, resp.StatusCode, got)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	logs := logged.String() + <-rest
	if err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, logs)
	}
	if strings.Contains(logs, "demo-secret") {
		t.Error("the demo's client secret is in the logs")
	}
}

func TestCheckCommand(t *testing.T) {
	env := map[string]string{}
	for _, api := range []string{"REDGIFS", "PRODUCTHUNT", "TEENQUOTES", "REDBOOTH"} {
		env[api+"_CLIENT_ID"], env[api+"_CLIENT_SECRET"] = "id", "secret"
	}
	run := func(path string, env map[string]string) (int, string) {
		var out strings.Builder
		code := app.Run(context.Background(), app.Options{Args: []string{"check", "--config", path}, Stdout: &out, Stderr: &out,
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		return code, out.String()
	}
	if code, out := run("../proxy.yaml", env); code != 0 || !strings.Contains(out, "OK, 4 upstream(s)") {
		t.Errorf("the example config: exit %d: %s", code, out)
	}
	code, out := run("../proxy.yaml", nil)
	if code != 2 || !strings.Contains(out, "upstreams.redgifs.token.client_secret: environment variable REDGIFS_CLIENT_SECRET is not set") {
		t.Errorf("without credentials: exit %d: %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: x\nupstreams:\n  a:\n    targt: https://x\n"), 0o600)
	code, out = run(bad, nil)
	for _, want := range []string{`listen: "x" is not host:port`, `upstreams.a.targt: unknown key; did you mean "target", which is required and not set?`, "upstreams.a.token.client_id: required"} {
		if code != 2 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output does not say %q:\n%s", code, want, out)
		}
	}
	if strings.Contains(out, "upstreams.a.target:") {
		t.Errorf("the misspelt target is reported twice:\n%s", out)
	}
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	f := fakeapi.RedGIFs()
	clock := fakeclock.New(time.Now())
	api := fakeapi.New(f, clientID, clientSecret, clock.Now)
	apiSrv := newServer(t, api)
	arrived, release := holdAPI(t, api, func(w http.ResponseWriter) bool {
		io.WriteString(w, "finished")
		return true
	})
	path := configFor(t, f, apiSrv, setup{})
	ctx, cancel := context.WithCancel(context.Background())
	ready, exit := make(chan string, 1), make(chan int, 1)
	logs := &syncbuf.Buffer{}
	go func() {
		exit <- app.Run(ctx, app.Options{Args: []string{"--config", path}, Stderr: logs, Stdout: logs,
			Ready: func(a string) { ready <- a }, Now: clock.Now})
	}()
	addr := <-ready
	result := make(chan string)
	go func() {
		resp, err := http.Get("http://" + addr + "/redgifs" + f.APIPath)
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-arrived
	cancel() // what SIGTERM does in main
	// New connections are refused once shutdown has begun... The probe asks
	// for a path with no upstream: one accepted just before the listener
	// closes must be answered at once, not held at the fake API with the
	// request under test. Without keep-alives each probe dials anew.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, "the listener to close", func() bool {
		resp, err := probe.Get("http://" + addr + "/no-such-upstream")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil && errors.Is(err, syscall.ECONNREFUSED)
	})
	// ...while the request in flight is allowed to finish.
	release()
	if got := <-result; got != "finished" {
		t.Errorf("in-flight request got %q", got)
	}
	if code := <-exit; code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// binaryProxy is the built binary running on a config.
type binaryProxy struct {
	addr, admin string // host:port of the proxy and of its admin endpoints
	pid         int
	logs        *syncbuf.Buffer
}

// runBinary runs bin on config until the test ends, when SIGTERM must
// make it exit 0 within shutdown_timeout. wrap, if given, is a command and
// its arguments that end by running the binary (unshare, for a mount).
func runBinary(t *testing.T, bin, config string, wrap ...string) *binaryProxy {
	t.Helper()
	args := append(wrap, bin, "--config", config)
	cmd := exec.Command(args[0], args[1:]...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &binaryProxy{pid: cmd.Process.Pid, logs: &syncbuf.Buffer{}}
	var logDone <-chan struct{}
	p.addr, p.admin, logDone = listening(t, stderr, p.logs)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { <-logDone; exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("no exit 30s after SIGTERM")
			<-exited
		}
		if t.Failed() {
			t.Logf("proxy logs:\n%s", p.logs)
		}
	})
	return p
}
