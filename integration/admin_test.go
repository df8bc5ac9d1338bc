package integration

// Promises to operators: the admin endpoints.

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

func (e *env) adminGet(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.admin + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e.assertNoSecretsIn("admin "+path, string(b))
	return resp.StatusCode, string(b)
}

func TestAdminHealthz(t *testing.T) {
	e := start(t, fakeapi.RedGIFs(), setup{})
	if status, body := e.adminGet("/healthz"); status != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("%d %s", status, body)
	}
}

func TestReadyzMakesAColdStartReadyOnceTheFirstFetchSucceeds(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	status, body := e.adminGet("/readyz")
	if status != 200 || !strings.Contains(body, `"ready":true`) || e.api.TokenRequests() != 1 {
		t.Errorf("%d %s after %d token requests", status, body, e.api.TokenRequests())
	}
	// The token it fetched serves the first request.
	e.do("GET", f.APIPath, nil)
	if e.api.TokenRequests() != 1 {
		t.Error("the readiness fetch was not reused")
	}
}

func TestReadyzNamesTheUpstreamsThatAreNotReadyAndWhy(t *testing.T) {
	for _, tt := range []struct {
		f      fakeapi.Flavor
		fault  http.HandlerFunc
		reason string
	}{
		{fakeapi.RedGIFs(), func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "token_endpoint_error"},
		{fakeapi.RedGIFs(), func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }, "token_endpoint_bad_response"},
		{fakeapi.Redbooth(), nil, "reauthorization_required"}, // no login yet
	} {
		e := start(t, tt.f, setup{})
		e.api.SetTokenFault(tt.fault)
		status, body := e.adminGet("/readyz")
		var got struct {
			Ready    bool
			NotReady map[string]string `json:"not_ready"`
		}
		json.Unmarshal([]byte(body), &got)
		if status != 503 || got.Ready || got.NotReady[tt.f.Name] != tt.reason {
			t.Errorf("%s: %d %s, want 503 with %s", tt.f.Name, status, body, tt.reason)
		}
		if _, body := e.adminGet("/status"); !strings.Contains(body, `"state":"`+tt.reason+`"`) {
			t.Errorf("/status: %s", body)
		}
	}
}

func TestReadyzFailsAsSoonAsShutdownBegins(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	arrived, release := holdAPI(t, e.api, func(http.ResponseWriter) bool { return false })
	if status, _ := e.adminGet("/readyz"); status != 200 {
		t.Fatal("not ready before the shutdown")
	}
	done := make(chan int)
	go func() { status, _, _ := e.do("GET", f.APIPath, nil); done <- status }()
	<-arrived
	stop := e.stop // launch replaces it on a restart; this test does none
	go stop()
	// While the request drains, the proxy reports itself not ready.
	waitFor(t, "readyz to fail", func() bool {
		resp, err := http.Get(e.admin + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 503 && strings.Contains(string(b), `"shutting_down":true`)
	})
	release()
	if status := <-done; status != 200 {
		t.Errorf("the draining request got %d", status)
	}
}

func TestMetricsCountRequestsTokensAndReplays(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	for range 3 {
		e.do("GET", f.APIPath, nil)
	}
	e.api.RevokeAll()
	e.do("POST", f.APIPath, []byte("x"))
	e.do("GET", "/../x", nil)
	status, body := e.adminGet("/metrics")
	if status != 200 {
		t.Fatal(status)
	}
	for _, want := range []string{
		`authproxy_requests_total{method="GET",status="200",upstream="redgifs"} 3`,
		`authproxy_requests_total{method="POST",status="200",upstream="redgifs"} 1`,
		`authproxy_token_requests_total{result="success",upstream="redgifs"} 2`,
		`authproxy_token_refreshes_total{reason="startup",upstream="redgifs"} 1`,
		`authproxy_token_refreshes_total{reason="401",upstream="redgifs"} 1`,
		`authproxy_replays_total{outcome="success",upstream="redgifs"} 1`,
		`authproxy_request_duration_seconds_count{upstream="redgifs"} 4`,
		`authproxy_inflight_requests 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	m := regexp.MustCompile(`authproxy_token_expiry_seconds\{upstream="redgifs"\} (\S+)`).FindStringSubmatch(body)
	if secs, _ := strconv.ParseFloat(m[1], 64); len(m) < 2 || secs < 86000 || secs > 86400 {
		t.Errorf("token expiry gauge: %v", m)
	}
}

func TestStatusShowsTokenStateButNeverTheToken(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.do("GET", f.APIPath, nil)
	_, body := e.adminGet("/status") // adminGet checks it holds no secret
	var got []struct {
		Upstream, State string
		ExpiresAt       string `json:"expires_at"`
		LastRefresh     string `json:"last_refresh"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 1 || got[0].State != "valid" ||
		got[0].ExpiresAt != "2026-03-02T12:00:00Z" || got[0].LastRefresh != "2026-03-01T12:00:00Z" {
		t.Errorf("%s", body)
	}
}

// The admin listener cuts off a client that sends half its headers, and
// closes an idle kept-alive connection, as the proxy's listener does
// (limits.read_header_timeout and limits.idle_timeout): without, each
// such connection held a goroutine and a socket for ever. The client's
// deadline, far longer, only detects a connection left open.
func TestAdminListenerCutsOffSlowHeadersAndIdleConnections(t *testing.T) {
	e := start(t, fakeapi.RedGIFs(), setup{topYAML: "limits: {read_header_timeout: 200ms, idle_timeout: 200ms}\n"})
	addr := strings.TrimPrefix(e.admin, "http://")
	closedByServer := func(conn net.Conn, r *bufio.Reader) bool {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := r.ReadByte()
		var netErr net.Error
		return err != nil && !(errors.As(err, &netErr) && netErr.Timeout())
	}
	t.Run("half a header", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		if !closedByServer(conn, bufio.NewReader(conn)) {
			t.Error("the admin server still waits for the rest of the headers")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
		}
		if !closedByServer(conn, r) {
			t.Error("the admin server keeps an idle connection open")
		}
	})
}

// /readyz says the proxy holds a token it has not seen expire; it does not
// ask the API. A token the API stopped accepting stays ready until a
// request meets the 401, and then only a failed refresh turns it not
// ready (docs/operating.md, "What ready means"). With the refresh token
// dead too, each later look sends nothing to the token endpoint and says
// Retry-After: 1 (docs/behaviour.md, "A dead refresh token").
func TestReadyzStaysReadyWithARevokedTokenUntilARequestMeetsIt(t *testing.T) {
	f := fakeapi.Redbooth()
	e := start(t, f, setup{seedRefresh: true})
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatal(status)
	}
	e.api.RevokeAll()           // the access token
	e.api.RevokeRefreshTokens() // and the refresh token: the user revoked the app
	before := e.api.TokenRequests()
	if status, body := e.adminGet("/readyz"); status != 200 {
		t.Errorf("/readyz with a revoked, unexpired token: %d %s; want 200 (it does not ask the API)", status, body)
	}
	hdr := e.expectError(f.APIPath, 502, "reauthorization_required", "run: authproxy login redbooth: token endpoint answered 400 invalid_grant")
	if status, body := e.adminGet("/readyz"); status != 503 || !strings.Contains(body, `"redbooth":"reauthorization_required"`) {
		t.Errorf("/readyz after the request met the revocation: %d %s", status, body)
	}
	if got := e.api.TokenRequests() - before; got != 1 {
		t.Errorf("%d token requests; want 1 (the refresh the 401 caused)", got)
	}
	for range 3 {
		e.clock.Advance(2 * time.Second) // past each "next attempt"
		hdr = e.expectError(f.APIPath, 502, "reauthorization_required", "the refresh token was rejected; run: authproxy login redbooth (next attempt at ")
		if got := hdr.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After %q; want 1", got)
		}
	}
	if got := e.api.TokenRequests() - before; got != 1 {
		t.Errorf("%d token requests; the next attempts must send none", got)
	}
}
