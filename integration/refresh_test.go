package integration

// Promises about APIs that act for a user, with refresh tokens that rotate
// on every use (Redbooth).

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

func TestRefreshTokensRotateUnderConcurrentTrafficEachRedeemedOnce(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{seedRefresh: true, tokenYAML: "      refresh_before: 10m\n"})
	refreshes := 0
	for i := range 24 {
		switch i % 3 {
		case 0: // into the refresh window: a background refresh while requests hold a valid token
			e.clock.Advance(f.ExpiresIn - 9*time.Minute)
		case 1: // past expiry: every request waits for one refresh
			e.clock.Advance(f.ExpiresIn + time.Minute)
		case 2: // revoked access token: 401, one refresh, replay
			e.api.RevokeAll()
		}
		if failed := e.concurrently(40, "GET", f.APIPath, nil); failed != 0 {
			t.Fatalf("round %d: %d of 40 requests failed", i, failed)
		}
		refreshes++
		waitFor(t, "the refresh", func() bool { return e.api.TokenRequests() >= refreshes })
		if got := e.api.TokenRequests(); got != refreshes {
			t.Fatalf("round %d: %d token requests, want %d", i, got, refreshes)
		}
	}
	for rt, n := range e.api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
	if got := len(e.api.Redemptions()); got != refreshes {
		t.Errorf("%d refresh tokens redeemed, want %d", got, refreshes)
	}
}

func TestRestartReusesTheStoredTokensWithoutATokenRequest(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{seedRefresh: true})
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatal(status)
	}
	e.restart()
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatal(status)
	}
	if got := e.api.TokenRequests(); got != 1 {
		t.Errorf("%d token requests across a restart, want 1: the stored access token was not reused", got)
	}
	// Once it expires, the stored (rotated) refresh token is used, not the
	// one in the config, which is dead by now.
	e.clock.Advance(f.ExpiresIn)
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("after expiry: %d %s", status, body)
	}
	for rt, n := range e.api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
	info, err := os.Stat(e.storePath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("store file: %v, %v", info, err)
	}
}

func TestDeadRefreshTokenAnswersReauthorizationRequiredUntilALogin(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{seedRefresh: true})
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatal(status)
	}
	e.api.RevokeRefreshTokens() // the user revoked the app
	e.clock.Advance(f.ExpiresIn)
	e.expectError(f.APIPath, 502, "reauthorization_required", "run: authproxy login redbooth")
	before := e.api.TokenRequests()
	for range 20 {
		e.clock.Advance(2 * time.Second)
		e.expectError(f.APIPath, 502, "reauthorization_required", "authproxy login redbooth")
	}
	if got := e.api.TokenRequests(); got != before {
		t.Errorf("%d more token requests with a dead refresh token: a retry loop", got-before)
	}
	if n := strings.Count(e.logs.String(), `"level":"error","msg":"reauthorization required: the refresh token was rejected`); n != 1 {
		t.Errorf("the reauthorization error was logged %d times, want once", n)
	}

	// A person logs in again while the proxy runs; it picks the new token up.
	if code, out := runLogin(t, e, browseAndAllow); code != 0 {
		t.Fatalf("login: exit %d\n%s", code, out)
	}
	e.clock.Advance(2 * time.Second)
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Errorf("after login: %d %s", status, body)
	}
}

// browser plays the user's browser: it visits the authorize URL and
// returns the redirect back to the login command.
type browser func(t *testing.T, authURL string) string

func browseAndAllow(t *testing.T, authURL string) string {
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize endpoint: %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// startLogin runs `authproxy login NAME` in process and returns the
// authorize URL it printed ("" if none), its exit code once it ends, and
// all it wrote.
func startLogin(configPath, name string) (authURL string, exit <-chan int, out *syncbuf.Buffer) {
	pr, pw := io.Pipe()
	out = &syncbuf.Buffer{}
	code := make(chan int, 1)
	go func() {
		code <- app.Run(context.Background(), app.Options{
			Args:   []string{"login", name, "--config", configPath, "--no-browser"},
			Stdout: io.MultiWriter(pw, out), Stderr: out,
			LookupEnv: func(string) (string, bool) { return "", false },
		})
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	for authURL == "" && lines.Scan() {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "http") {
			authURL = l
		}
	}
	go io.Copy(io.Discard, pr)
	return authURL, code, out
}

// runLogin runs `authproxy login redbooth` in process, plays the browser
// with visit, and returns the exit code and all output.
func runLogin(t *testing.T, e *env, visit browser) (int, string) {
	t.Helper()
	authURL, exit, out := startLogin(e.config, "redbooth")
	if authURL == "" {
		return <-exit, out.String()
	}
	u := authURL
	for _, want := range []string{"state=", "code_challenge=", "code_challenge_method=S256", "response_type=code", "client_id="} {
		if !strings.Contains(u, want) {
			t.Errorf("authorize URL lacks %s: %s", want, u)
		}
	}
	callback := visit(t, authURL)
	resp, err := http.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := <-exit
	e.assertNoSecretsIn("the login page", string(page))
	e.assertNoSecretsIn("the login output", out.String())
	return code, out.String() + string(page)
}

func TestLoginStoresTheFirstRefreshToken(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{})
	e.expectError(f.APIPath, 502, "reauthorization_required", "no refresh token yet; run: authproxy login redbooth")
	code, out := runLogin(t, e, browseAndAllow)
	if code != 0 || !strings.Contains(out, "Logged in to redbooth") || !strings.Contains(out, e.storePath) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var stored struct {
		Tokens map[string]struct {
			RefreshToken string `json:"refresh_token"`
		}
	}
	data, _ := os.ReadFile(e.storePath)
	if err := json.Unmarshal(data, &stored); err != nil || stored.Tokens["redbooth"].RefreshToken != e.api.LatestRefreshToken() {
		t.Fatalf("store after login: %v", err)
	}
	e.clock.Advance(2 * time.Second) // the running proxy looks at most once a second
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Errorf("after login: %d %s", status, body)
	}
	if got := e.api.TokenRequests(); got != 1 {
		t.Errorf("%d token requests: the login's access token should be used as is", got)
	}
}

// A redirect whose state is not the login's is neither exchanged nor
// allowed to end the login: the browser's own, after it, completes it.
func TestLoginIgnoresAStateMismatch(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{})
	authURL, exit, out := startLogin(e.config, "redbooth")
	if authURL == "" {
		t.Fatalf("login printed no URL: exit %d\n%s", <-exit, out)
	}
	real := browseAndAllow(t, authURL)
	resp, err := http.Get(strings.Replace(real, "state=", "state=forged", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the forged redirect: %d, want 400", resp.StatusCode)
	}
	waitFor(t, "login to say it ignored the forged redirect", func() bool { return strings.Contains(out.String(), "ignored a redirect") })
	if _, err := os.Stat(e.storePath); err == nil {
		t.Error("a forged redirect stored tokens")
	}
	if e.api.TokenRequests() != 0 {
		t.Error("the code of a forged redirect was exchanged")
	}
	if resp, err = http.Get(real); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := <-exit; code != 0 || !strings.Contains(out.String(), "Logged in to redbooth") {
		t.Errorf("exit %d after the real redirect\n%s", code, out)
	}
}

func TestLoginReportsDeniedConsent(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{})
	e.api.SetDenyConsent(true)
	code, out := runLogin(t, e, browseAndAllow)
	if code == 0 || !strings.Contains(out, "access_denied: The resource owner or authorization server denied the request.") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestCorruptStoreStopsTheProxyAndIsLeftUntouched(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{seedRefresh: true})
	e.stop()
	corrupt := []byte(`{"version":1,"tokens":{"redbooth":{"refresh_token":"r-`)
	if err := os.MkdirAll(filepath.Dir(e.storePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.storePath, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(e.storePath)
	var out syncbuf.Buffer
	code := app.Run(context.Background(), app.Options{Args: []string{"--config", e.config}, Stdout: &out, Stderr: &out})
	if code != 2 || !strings.Contains(out.String(), e.storePath) || !strings.Contains(out.String(), "left untouched") {
		t.Errorf("exit %d\n%s", code, out.String())
	}
	after, _ := os.Stat(e.storePath)
	if got, _ := os.ReadFile(e.storePath); string(got) != string(corrupt) || !after.ModTime().Equal(info.ModTime()) {
		t.Error("the corrupt store was changed")
	}
}
