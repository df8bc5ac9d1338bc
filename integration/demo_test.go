package integration

// The built-in demo (`go run .` with no config), as the README's "Two
// commands" shows it: the Redbooth-shaped fake works at once, and
// `authproxy login` reaches it from another terminal.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

func TestDemoActsForAUserAndShowsALogin(t *testing.T) {
	redirectPort, listenPort := strconv.Itoa(freePort(t)), strconv.Itoa(freePort(t))
	t.Setenv("AUTHPROXY_LISTEN", "127.0.0.1:0")
	t.Setenv("AUTHPROXY_ADMIN_LISTEN", "127.0.0.1:0")
	// Not the default 8085, which another test may hold.
	t.Setenv("AUTHPROXY_UPSTREAMS_REDBOOTH_TOKEN_REDIRECT_URI", "http://127.0.0.1:"+redirectPort+"/callback")
	var logs syncbuf.Buffer
	ready := make(chan string, 1)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Stdout: &logs, Stderr: &logs, Ready: func(a string) { ready <- a }})
	}()
	t.Cleanup(func() { stop(); <-done })
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("the demo exited with %d:\n%s", code, logs.String())
	}

	// The seeded refresh token works without a login.
	resp, err := http.Get("http://" + addr + "/redbooth/api/3/me")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"authenticated":true`) {
		t.Fatalf("redbooth in the demo: %d %s\n%s", resp.StatusCode, body, logs.String())
	}

	// The demo says how to log in, with a config file that exists.
	m := regexp.MustCompile(`authproxy login redbooth --config (\S+) --no-browser`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("the demo does not show the login command:\n%s", logs.String())
	}
	configPath := m[1]

	// The login, listening where a published port would lead (--listen),
	// while the browser is sent to redirect_uri.
	pr, pw := io.Pipe()
	var out syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- app.Run(context.Background(), app.Options{
			Args:   []string{"login", "redbooth", "--config", configPath, "--no-browser", "--listen", "127.0.0.1:" + listenPort},
			Stdout: io.MultiWriter(pw, &out), Stderr: &out,
		})
		pw.Close()
	}()
	var authURL string
	for lines := bufio.NewScanner(pr); authURL == "" && lines.Scan(); {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "http") {
			authURL = l
		}
	}
	go io.Copy(io.Discard, pr)
	if authURL == "" {
		t.Fatalf("login exited with %d and no URL:\n%s", <-exit, out.String())
	}
	callback := browseAndAllow(t, authURL)
	u, err := url.Parse(callback)
	if err != nil || u.Port() != redirectPort {
		t.Fatalf("the consent page sent the browser to %q", callback)
	}
	u.Host = "127.0.0.1:" + listenPort // what a published port does
	resp, err = http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	storePath := filepath.Join(filepath.Dir(configPath), "tokens.json")
	if code := <-exit; code != 0 || !strings.Contains(out.String(), "Logged in to redbooth") || !strings.Contains(out.String(), storePath) {
		t.Fatalf("login: exit %d\n%s\n%s", code, out.String(), page)
	}
	var stored struct {
		Tokens map[string]struct {
			RefreshToken string `json:"refresh_token"`
		}
	}
	data, _ := os.ReadFile(storePath)
	if err := json.Unmarshal(data, &stored); err != nil || stored.Tokens["redbooth"].RefreshToken == "" {
		t.Fatalf("the demo's store after login: %v %s", err, data)
	}

	stop()
	if code := <-done; code != 0 {
		t.Errorf("the demo exited with %d", code)
	}
	done <- 0 // for the cleanup
	waitFor(t, "the demo's directory to be removed", func() bool {
		_, err := os.Stat(filepath.Dir(configPath))
		return os.IsNotExist(err)
	})
	if strings.Contains(logs.String()+out.String(), "demo-secret") {
		t.Error("the demo's client secret is in the output")
	}
}
