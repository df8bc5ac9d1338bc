package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/redistest"
)

func redisSetup(srv *redistest.Server, extra string) setup {
	return setup{topYAML: fmt.Sprintf("store:\n  type: redis\n  url: %s\n%s", srv.URL(), extra), seedRefresh: true}
}

// sharedStatus reads /status's shared_store fields for the one upstream.
func (e *env) sharedStatus() (mode, errText string) { return sharedStoreStatus(e.t, e.admin) }

// sharedStoreStatus reads shared_store and shared_store_error from the
// /status of a proxy with one upstream.
func sharedStoreStatus(t *testing.T, admin string) (mode, errText string) {
	t.Helper()
	resp, err := http.Get(admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st []struct {
		SharedStore string `json:"shared_store"`
		Error       string `json:"shared_store_error"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	if len(st) != 1 {
		t.Fatalf("status %+v", st)
	}
	return st[0].SharedStore, st[0].Error
}

// A refresh-token upstream never redeems without the fleet's lock: with
// Redis down it answers a clear 503 and redeems nothing, and resumes
// when Redis is back.
func TestRefreshTokenUpstreamFailsClosedWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	f := fakeapi.Redbooth()
	e := start(t, f, redisSetup(srv, ""))
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("with Redis up: %d %s", status, body)
	}
	if mode, _ := e.sharedStatus(); mode != "shared" {
		t.Errorf("/status shared_store %q, want shared", mode)
	}
	if strings.Contains(e.logs.String(), "redis does not sync every write") {
		t.Error("warned about durability, but this Redis runs appendfsync always")
	}
	redeemed := len(e.api.Redemptions())
	srv.Stop()
	e.api.RevokeAll()
	hdr := e.expectError(f.APIPath, 503, "token_store_unavailable", "the shared token store is unreachable")
	if hdr.Get("Retry-After") == "" {
		t.Error("no Retry-After on the 503")
	}
	if n := len(e.api.Redemptions()); n != redeemed {
		t.Errorf("%d refresh tokens redeemed with Redis down", n-redeemed)
	}
	if mode, errText := e.sharedStatus(); mode != "unavailable" || !strings.Contains(errText, "redis") {
		t.Errorf("/status shared_store %q (%q), want unavailable and why", mode, errText)
	}
	if !strings.Contains(e.logs.String(), "no refresh token is redeemed without the fleet's lock") {
		t.Error("the outage is not logged")
	}

	srv.Restart()
	waitFor(t, "the upstream to work again", func() bool {
		e.clock.Advance(2 * time.Second) // past the short backoff
		status, _, _ := e.do("GET", f.APIPath, nil)
		return status == 200
	})
	if mode, _ := e.sharedStatus(); mode != "shared" {
		t.Errorf("/status shared_store %q after Redis came back, want shared", mode)
	}
	for rt, n := range e.api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
}

// A restarted replica takes the fleet's token and refresh token from
// Redis, sealed with the encryption key: no token request.
func TestRedisStoreSurvivesARestart(t *testing.T) {
	srv := redistest.Start(t)
	f := fakeapi.Redbooth()
	e := start(t, f, redisSetup(srv, "  encryption_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"))
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	e.restart()
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("after restart: %d %s", status, body)
	}
	if n := e.api.TokenRequests(); n != 1 {
		t.Errorf("%d token requests across a restart, want 1", n)
	}
	e.assertNoSecretsIn("redis", srv.Dump())
}

// The Redis URL's password never reaches the logs, even when Redis
// refuses it; and a Redis that does not sync every write is warned about
// when it holds refresh tokens.
func TestRedisStoreWarningsAndNoPasswordInLogs(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client().ConfigSet(t.Context(), "appendfsync", "everysec")
	f := fakeapi.Redbooth()
	e := start(t, f, redisSetup(srv, ""))
	if !strings.Contains(e.logs.String(), "redis does not sync every write to disk") {
		t.Error("no warning about appendfsync everysec")
	}
	e.stop()

	g := fakeapi.RedGIFs()
	srv.Client().ConfigSet(t.Context(), "requirepass", "another-password")
	url := strings.Replace(srv.URL(), "redis://", "redis://:pa55-w0rd-in-url@", 1)
	e2 := start(t, g, setup{topYAML: "store:\n  type: redis\n  url: " + url + "\n"})
	// Redis wants another password, so AUTH fails: the upstream falls back.
	if status, body, _ := e2.do("GET", g.APIPath, nil); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if mode, errText := e2.sharedStatus(); mode != "fallback" || strings.Contains(errText, "pa55") {
		t.Errorf("/status %q %q", mode, errText)
	}
	e2.stop()
	if !strings.Contains(e2.logs.String(), "WRONGPASS") {
		t.Errorf("the refused password is not logged as the reason:\n%s", e2.logs)
	}
	if strings.Contains(e2.logs.String(), "pa55-w0rd-in-url") {
		t.Errorf("the Redis password is in the logs:\n%s", e2.logs)
	}
}
