package docker

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// storedToken is what the proxy keeps of an upstream on the tokens volume.
type storedToken struct {
	RefreshToken string `json:"refresh_token"`
}

// tokenFile reads /var/lib/authproxy/tokens.json out of a container with
// `docker cp`, whose tar stream carries the file's owner and mode (the
// image has no shell to ask).
func tokenFile(t *testing.T, container string) (*tar.Header, map[string]storedToken) {
	t.Helper()
	cmd := exec.Command("docker", "cp", container+":/var/lib/authproxy/tokens.json", "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	tr := tar.NewReader(out)
	h, err := tr.Next()
	if err != nil {
		t.Fatalf("docker cp tokens.json: %v", err)
	}
	var f struct{ Tokens map[string]storedToken }
	if err := json.NewDecoder(tr).Decode(&f); err != nil {
		t.Fatalf("tokens.json: %v", err)
	}
	io.Copy(io.Discard, out)
	return h, f.Tokens
}

// checkTokenFile wants the file owned by the proxy's user, mode 0600,
// holding a refresh token for redbooth, and returns that token.
func checkTokenFile(t *testing.T, container string) string {
	t.Helper()
	h, tokens := tokenFile(t, container)
	if h.Uid != 65532 || h.Gid != 65532 || h.Mode&0o777 != 0o600 {
		t.Errorf("tokens.json on the volume: uid %d gid %d mode %o; want 65532, 65532, 600", h.Uid, h.Gid, h.Mode&0o777)
	}
	rt := tokens["redbooth"].RefreshToken
	if rt == "" {
		t.Fatal("no refresh token for redbooth on the volume")
	}
	return rt
}

// TestDefaultStack is `docker compose up --build` as the docs show it,
// and what a user does with it next, in order: the requests, a restart, a
// login from a container with the browser on this machine, a stop with a
// request in flight, down, and down -v.
func TestDefaultStack(t *testing.T) {
	requireDocker(t)
	requireFreePorts(t, 8080, 9090, 9105, 8085)
	p := newProject(t, "stack")
	staleImage(t)
	up := p.start(t, documented(t, "docker compose up"), nil)
	took := authenticated(t, 15*time.Minute, "http://127.0.0.1:8080/redgifs/v2/gifs/search") // --build: see TestReplicasProfile
	t.Logf("docker compose up --build: the first authenticated request after %s", took.Round(time.Second))
	proxy := p.container(t, "authproxy")
	if stale := docker(t, "image", "inspect", "-f", `{{index .Config.Labels "authproxytest.stale"}}`, docker(t, "inspect", "-f", "{{.Image}}", proxy)); stale != "" {
		t.Error("the proxy runs the stale authproxy image: --build did not build it from this code")
	}

	t.Run("requests reach the fake APIs with the token attached", func(t *testing.T) {
		for _, line := range documentedAll(t, "curl http://127.0.0.1:8080/") {
			if out := p.run(t, line); !strings.Contains(out, `"authenticated":true`) {
				t.Errorf("%s: %s", line, out)
			}
		}
		for _, path := range upstreamPaths {
			authenticated(t, 10*time.Second, "http://127.0.0.1:8080"+path)
		}
		if out := p.run(t, documented(t, "curl http://127.0.0.1:9090/readyz")); !strings.Contains(out, `"ready":true`) {
			t.Errorf("/readyz: %s", out)
		}
		if status, body := get("http://127.0.0.1:9090/metrics"); status != 200 || !strings.Contains(body, `authproxy_requests_total{method="GET",status="200",upstream="redgifs"}`) {
			t.Errorf("/metrics: %d %.300s", status, body)
		}
		for name, s := range stats(t) {
			if s.TokenRequests != 1 {
				t.Errorf("%s: %d token requests; want 1", name, s.TokenRequests)
			}
		}
		took := eventually(t, 90*time.Second, "healthy (the image's HEALTHCHECK)", func() (bool, string) {
			s := docker(t, "inspect", "-f", "{{.State.Health.Status}}", proxy)
			return s == "healthy", s
		})
		t.Logf("healthy after %s more", took.Round(time.Second))
	})

	t.Run("the rotated refresh token is on the volume and survives a restart", func(t *testing.T) {
		first := checkTokenFile(t, proxy)
		if first == "demo-redbooth-refresh-token" {
			t.Fatal("the stored refresh token is the seed: the rotation was not saved")
		}
		before := stats(t)["redbooth"]
		p.run(t, documented(t, "docker compose restart authproxy"))
		authenticated(t, time.Minute, "http://127.0.0.1:8080/redbooth/api/3/me")
		if got := stats(t)["redbooth"]; got.TokenRequests != before.TokenRequests {
			t.Errorf("the restart cost %d token requests; the stored access token should serve", got.TokenRequests-before.TokenRequests)
		}
		// The access token runs out: the proxy must go on with the refresh
		// token it stored before the restart.
		expireAccessTokens(t)
		authenticated(t, 10*time.Second, "http://127.0.0.1:8080/redbooth/api/3/me")
		s := stats(t)["redbooth"]
		if s.Redemptions != before.Redemptions+1 || s.RedeemedTwice != 0 || s.InvalidGrants != 0 || s.Logins != 0 {
			t.Errorf("fake Redbooth after the restart: %+v; want one more redemption, none twice, no invalid grant, no login (before: %+v)", s, before)
		}
		if second := checkTokenFile(t, proxy); second == first {
			t.Error("the refresh token on the volume did not rotate")
		}
	})

	t.Run("login in a container with the browser on this machine", func(t *testing.T) {
		loginFromContainer(t, p.shell, documented(t, "docker compose run --rm -p 127.0.0.1:8085:8085 authproxy login redbooth"))
		checkTokenFile(t, proxy)
	})

	t.Run("docker stop drains a request in flight past 10s and exits 0", func(t *testing.T) {
		before := stats(t)["redgifs"].APIRequests
		type result struct {
			status int
			body   string
		}
		done := make(chan result, 1)
		go func() {
			s, b := get("http://127.0.0.1:8080/redgifs/v2/gifs/search?fake_delay=15s")
			done <- result{s, b}
		}()
		eventually(t, 10*time.Second, "the slow request at the fake API", func() (bool, string) {
			return stats(t)["redgifs"].APIRequests > before, ""
		})
		start := time.Now()
		docker(t, "stop", proxy)
		stopped := time.Since(start)
		r := <-done
		if r.status != 200 || !strings.Contains(r.body, `"authenticated":true`) {
			t.Errorf("the request in flight: %d %s", r.status, r.body)
		}
		if code := docker(t, "inspect", "-f", "{{.State.ExitCode}}", proxy); code != "0" {
			t.Errorf("exit code %s after docker stop; want 0", code)
		}
		t.Logf("docker stop took %s with a 15s request in flight", stopped.Round(100*time.Millisecond))
		if stopped < 10*time.Second {
			t.Errorf("docker stop returned after %s, before the request was answered", stopped)
		}
	})

	t.Run("down keeps the tokens volume", func(t *testing.T) {
		p.run(t, documentedLine(t, "docker compose down"))
		if err := up.wait(t, time.Minute); err != nil {
			t.Logf("docker compose up ended with %v", err)
		}
		if exec.Command("docker", "volume", "inspect", p.name+"_tokens").Run() != nil {
			t.Error("docker compose down removed the tokens volume")
		}
	})

	t.Run("down -v leaves nothing behind", func(t *testing.T) {
		p.run(t, documentedLine(t, "docker compose down -v"))
		if left := p.leftovers(t); len(left) > 0 {
			t.Errorf("after docker compose down -v: %q", left)
		}
	})
}

// staleImage tags as authproxy an image that this code did not build (the
// suite's image with a label added), as an image built from older code
// would be, which `--build` must replace. Whatever happens, authproxy is
// the suite's image again at the end.
func staleImage(t *testing.T) {
	t.Helper()
	fresh := docker(t, "image", "inspect", "-f", "{{.Id}}", "authproxy")
	t.Cleanup(func() { exec.Command("docker", "tag", fresh, "authproxy").Run() })
	build := exec.Command("docker", "build", "-t", "authproxy", "-")
	build.Stdin = strings.NewReader("FROM authproxy\nLABEL authproxytest.stale=true\n")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("a stale authproxy image: %v\n%s", err, out)
	}
	if docker(t, "image", "inspect", "-f", "{{.Id}}", "authproxy") == fresh {
		t.Fatal("the stale image has the suite's id")
	}
}

// loginFromContainer runs line, a `login redbooth` in a container, and
// plays the browser on this machine: it opens the authorize URL login
// prints, whose consent page approves and redirects to 127.0.0.1:8085.
// The fake must count one more login.
func loginFromContainer(t *testing.T, sh shell, line string) {
	t.Helper()
	before := stats(t)["redbooth"]
	lines := make(chan string, 100)
	login := sh.start(t, line, lines)
	var authURL string
	deadline := time.After(2 * time.Minute)
	for authURL == "" {
		select {
		case l := <-lines:
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "http") {
				authURL = l
			}
		case <-deadline:
			t.Fatalf("no authorize URL from login:\n%s", login.out.String())
		case <-login.done:
			t.Fatalf("login exited: %v\n%s", login.err, login.out.String())
		}
	}
	if !strings.HasPrefix(authURL, fakeRedbooth+"/oauth/authorize?") {
		t.Fatalf("authorize URL %s: the browser on this machine cannot open it", authURL)
	}
	var visited []string
	browser := &http.Client{Timeout: time.Minute, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		visited = append(visited, r.URL.Host)
		return nil
	}}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatalf("the browser: %v\n%s", err, login.out.String())
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "logged in") || fmt.Sprint(visited) != "[127.0.0.1:8085]" {
		t.Errorf("the browser came back to %v with %d %s", visited, resp.StatusCode, page)
	}
	if err := login.wait(t, time.Minute); err != nil || !strings.Contains(login.out.String(), "Logged in to redbooth") {
		t.Errorf("login: %v\n%s", err, login.out.String())
	}
	if s := stats(t)["redbooth"]; s.Logins != before.Logins+1 {
		t.Errorf("fake Redbooth saw %d logins; want 1 more", s.Logins-before.Logins)
	}
}

// documentedAll returns every documented command that starts with prefix.
func documentedAll(t *testing.T, prefix string) []string {
	t.Helper()
	cmds, err := documentedCommands()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, c := range cmds {
		if strings.HasPrefix(c, prefix) {
			found = append(found, c)
		}
	}
	if len(found) == 0 {
		t.Fatalf("no documented command starts with %q", prefix)
	}
	return found
}
