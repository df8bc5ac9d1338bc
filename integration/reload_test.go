package integration

// Promises about changing proxy.yaml under a running proxy.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// rewriteConfig replaces the config file as Kubernetes and most editors
// do: a new file renamed over the old one.
func (e *env) rewriteConfig(edit func(string) string) {
	e.t.Helper()
	old, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(e.config), ".proxy.yaml.new")
	if err := os.WriteFile(tmp, []byte(edit(string(old))), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.config); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitForLog(what string, n int) {
	e.t.Helper()
	waitFor(e.t, what, func() bool { return strings.Count(e.logs.String(), what) >= n })
}

func TestReloadAddsAnUpstreamWithoutARestart(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	ph := fakeapi.ProductHunt()
	phAPI := fakeapi.New(ph, clientID, clientSecret, e.clock.Now)
	phURL := newServer(t, phAPI)
	e.rewriteConfig(func(c string) string {
		return c + "  producthunt:\n    target: " + phURL + "\n    token:\n      url: " + phURL + ph.TokenPath +
			"\n      client_id: " + clientID + "\n      client_secret: " + clientSecret + "\n      body_format: json\n"
	})
	e.waitForLog(`"msg":"config reloaded"`, 1)
	resp, err := e.client.Get("http://" + e.addr + "/producthunt" + ph.APIPath)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the new upstream: %v %v", resp, err)
	}
	resp.Body.Close()
	// The unchanged upstream kept its token.
	e.do("GET", f.APIPath, nil)
	if e.api.TokenRequests() > 1 {
		t.Error("the unchanged upstream fetched a new token")
	}
	if !strings.Contains(e.logs.String(), `"tokens_kept":1,"tokens_new":1`) {
		t.Error("the reload log does not say what was kept")
	}
}

func TestReloadRejectsAnInvalidConfigAndKeepsTheRunningOne(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.rewriteConfig(func(c string) string { return strings.Replace(c, "client_id:", "clientid:", 1) })
	e.waitForLog(`"msg":"config reload rejected; the running config stays"`, 1)
	if !strings.Contains(e.logs.String(), `unknown key; did you mean \"client_id\", which is required and not set?`) {
		t.Error("the rejection does not say what is wrong")
	}
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Errorf("after a rejected reload: %d", status)
	}
}

func TestReloadWithAChangedClientNeverSendsTheOldToken(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.do("GET", f.APIPath, nil)
	oldTokens := e.api.Secrets()
	other := fakeapi.New(f, clientID, clientSecret, e.clock.Now)
	otherURL := newServer(t, other)
	e.rewriteConfig(func(c string) string { return strings.ReplaceAll(c, e.apiURL, otherURL) })
	e.waitForLog(`"msg":"config reloaded"`, 1)
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatal(status)
	}
	reqs := other.APIRequests()
	if other.TokenRequests() != 1 || len(reqs) != 1 || !reqs[0].Authorized {
		t.Fatalf("the new upstream got %d token requests and %+v", other.TokenRequests(), reqs)
	}
	for _, tok := range oldTokens {
		if strings.Contains(reqs[0].Header.Get("Authorization"), tok) {
			t.Error("the old upstream's token was sent to the new one")
		}
	}
	if !strings.Contains(e.logs.String(), `"tokens_kept":0,"tokens_new":1`) {
		t.Error("the reload log does not say the token was replaced")
	}
}

func TestSIGHUPReloadsTheConfig(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	e.waitForLog(`"trigger":"SIGHUP"`, 1)
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Error(status)
	}
}

func TestRotatedClientSecretAppliesOnSIGHUP(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{secret: "the-old-secret"}) // the API no longer accepts it
	e.expectError(f.APIPath, 502, "token_unavailable", "401")
	// The secret file is rotated in place; it is not the config file, so
	// the operator sends SIGHUP.
	secretFile := filepath.Join(filepath.Dir(e.config), "client_secret")
	if err := os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	e.waitForLog(`"tokens_kept":0,"tokens_new":1`, 1)
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Errorf("after the rotation: %d %s", status, body)
	}
	if strings.Contains(e.logs.String(), "the-old-secret") {
		t.Error("the old secret is in the logs")
	}
}

// An upstream that a reload removes is gone from /metrics too: its series
// would otherwise be exported, unchanging, until the next restart.
func TestReloadThatRemovesAnUpstreamRemovesItsMetrics(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	ph := fakeapi.ProductHunt()
	phURL := newServer(t, fakeapi.New(ph, clientID, clientSecret, e.clock.Now))
	var original string
	e.rewriteConfig(func(c string) string {
		original = c
		return c + "  producthunt:\n    target: " + phURL + "\n    token:\n      url: " + phURL + ph.TokenPath +
			"\n      client_id: " + clientID + "\n      client_secret: " + clientSecret + "\n      body_format: json\n"
	})
	e.waitForLog(`"msg":"config reloaded"`, 1)
	resp, err := e.client.Get("http://" + e.addr + "/producthunt" + ph.APIPath)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the new upstream: %v %v", resp, err)
	}
	resp.Body.Close()
	e.do("GET", f.APIPath, nil)
	if _, body := e.adminGet("/metrics"); !strings.Contains(body, `upstream="producthunt"`) {
		t.Fatalf("no series of the new upstream:\n%s", body)
	}
	e.rewriteConfig(func(string) string { return original })
	e.waitForLog(`"msg":"config reloaded"`, 2)
	_, body := e.adminGet("/metrics")
	if strings.Contains(body, `upstream="producthunt"`) {
		t.Errorf("the removed upstream's series are still exported:\n%s", grepLines(body, `upstream="producthunt"`))
	}
	if !strings.Contains(body, `authproxy_requests_total{method="GET",status="200",upstream="redgifs"} 1`) {
		t.Errorf("the remaining upstream's series are gone:\n%s", grepLines(body, `upstream="redgifs"`))
	}
}

func grepLines(text, what string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
