package integration

// Promises about hostile or broken clients: whoever can reach the proxy
// can use its tokens, so it must refuse what would send them elsewhere.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// raw sends bytes net/http would not, and returns the status and body;
// status 0 means the proxy closed the connection without an answer.
func (e *env) raw(request string) (int, string) {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e.assertNoSecretsIn("a response body", string(b))
	return resp.StatusCode, string(b)
}

func TestHopByHopAbuseCannotStripTheInjectedToken(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	status, body := e.raw("GET /redgifs" + f.APIPath + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer the-clients-own\r\nConnection: close, Authorization\r\n\r\n")
	reqs := e.api.APIRequests()
	if status != 200 || len(reqs) != 1 || !reqs[0].Authorized {
		t.Fatalf("status %d %s; the API saw %+v", status, body, reqs)
	}
	if got := reqs[0].Header.Values("Authorization"); len(got) != 1 || strings.Contains(got[0], "the-clients-own") {
		t.Errorf("Authorization upstream: %q", got)
	}
}

func TestRequestsNeverLeaveForAnotherHost(t *testing.T) {
	var reached atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer evil.Close()
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	apiHost := strings.TrimPrefix(e.apiURL, "http://")
	for _, tt := range []struct {
		name, request string
		status        int
		upstreamPath  string // "" : must not reach the API
	}{
		{"absolute-form URI", "GET http://" + evilHost + "/redgifs/x HTTP/1.1\r\nHost: " + evilHost + "\r\n\r\n", 400, ""},
		{"CONNECT", "CONNECT " + evilHost + " HTTP/1.1\r\nHost: " + evilHost + "\r\n\r\n", 400, ""},
		{"Host header of another host", "GET /redgifs/x HTTP/1.1\r\nHost: " + evilHost + "\r\n\r\n", 200, "/x"},
		{"path that looks like a host", "GET /redgifs//169.254.169.254/latest HTTP/1.1\r\nHost: x\r\n\r\n", 200, "//169.254.169.254/latest"},
		{"encoded dot segments", "GET /redgifs/..%2f..%2fadmin HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"encoded dots", "GET /redgifs/%2e%2e/admin HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"plain dot segments", "GET /redgifs/a/../../admin HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.api.APIRequests())
			status, body := e.raw(tt.request)
			if status != tt.status {
				t.Errorf("status %d %s, want %d", status, body, tt.status)
			}
			reqs := e.api.APIRequests()[before:]
			switch {
			case tt.upstreamPath == "" && len(reqs) != 0:
				t.Errorf("reached the API as %q", reqs[0].Path)
			case tt.upstreamPath != "" && (len(reqs) != 1 || reqs[0].Path != tt.upstreamPath || reqs[0].Host != apiHost):
				t.Errorf("the API saw %+v", reqs)
			}
		})
	}
	if reached.Load() != 0 {
		t.Errorf("%d requests reached the other host", reached.Load())
	}
}

func TestClientForwardedHeadersAreDroppedByDefault(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=6.6.6.6\r\n" +
		"X-Real-IP: 6.6.6.6\r\nX-Forwarded-Prefix: /admin\r\nX-Original-URL: /admin\r\n\r\n")
	h := e.api.APIRequests()[0].Header
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-Ip", "X-Forwarded-Prefix", "X-Original-Url"} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s passed on: %q", name, v)
		}
	}
}

func TestClientForwardedForIsAppendedToWhenConfigured(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{topYAML: "inbound: {forwarded_headers: append}\n"})
	e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n")
	h := e.api.APIRequests()[0].Header
	if got := h.Get("X-Forwarded-For"); got != "6.6.6.6, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", got)
	}
	if h.Get("Forwarded") != "" {
		t.Error("Forwarded passed on")
	}
}

func TestH2CUpgradeIsRefused(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	status, body := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if status != 400 || !strings.Contains(body, "h2c") || len(e.api.APIRequests()) != 0 {
		t.Errorf("status %d %s", status, body)
	}
}

func TestOversizedHeadersGet431(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{topYAML: "limits: {max_header_bytes: 4KiB}\n"})
	big := strings.Repeat("a", 16<<10)
	if status, _ := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n"); status != 431 {
		t.Errorf("status %d, want 431", status)
	}
	if status, _ := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Small: b\r\n\r\n"); status != 200 {
		t.Errorf("a small header: status %d", status)
	}
}

func TestSlowHeadersAreCutOffAtReadHeaderTimeout(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{topYAML: "limits: {read_header_timeout: 200ms}\n"})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /redgifs/x HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the proxy kept a connection with unfinished headers open")
	}
	if len(e.api.APIRequests()) != 0 {
		t.Error("the unfinished request was forwarded")
	}
}

func TestOversizedBodyGets413(t *testing.T) {
	f := fakeapi.RedGIFs()
	for _, replayMax := range []string{"1MiB", "512"} { // kept for replay, and streamed
		e := start(t, f, setup{topYAML: "limits: {max_request_body: 1KiB}\n", upstreamYAML: "    replay: {max_body: " + replayMax + "}\n"})
		body := bytes.Repeat([]byte("x"), 4<<10)
		for _, chunked := range []bool{false, true} {
			var rd io.Reader = bytes.NewReader(body)
			if chunked {
				rd = io.MultiReader(rd)
			}
			req, _ := http.NewRequest("POST", e.url+f.APIPath, rd)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 413 || !strings.Contains(string(b), "request_too_large") {
				t.Errorf("replay max %s, chunked=%v: %d %s", replayMax, chunked, resp.StatusCode, b)
			}
		}
		for _, r := range e.api.APIRequests() {
			if len(r.Body) == len(body) {
				t.Error("an oversized body reached the API whole")
			}
		}
	}
}

func TestInboundAPIKeysAreRequiredComparedAndStripped(t *testing.T) {
	const key = "k-0123456789abcdef0123456789"
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{topYAML: "inbound: {api_keys: [\"" + key + "\"]}\n"})
	statusMissing, bodyMissing := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\n\r\n")
	statusWrong, bodyWrong := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Authproxy-Key: " + key[:len(key)-1] + "X\r\n\r\n")
	if statusMissing != 401 || statusWrong != 401 || bodyMissing != bodyWrong {
		t.Errorf("missing: %d %s; wrong: %d %s; want the same 401", statusMissing, bodyMissing, statusWrong, bodyWrong)
	}
	if n := len(e.api.APIRequests()); n != 0 {
		t.Errorf("%d unauthenticated requests reached the API", n)
	}
	if status, body := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Authproxy-Key: " + key + "\r\n\r\n"); status != 200 {
		t.Fatalf("with the key: %d %s", status, body)
	}
	if got := e.api.APIRequests()[0].Header.Get("X-Authproxy-Key"); got != "" {
		t.Error("the proxy's own API key was forwarded upstream")
	}
	if strings.Contains(e.logs.String(), key) {
		t.Error("the API key is in the logs")
	}
}

func TestInboundAllowedAddressesAreEnforced(t *testing.T) {
	f := fakeapi.RedGIFs()
	for cidrs, want := range map[string]int{"[10.0.0.0/8]": 403, "[10.0.0.0/8, 127.0.0.1]": 200} {
		e := start(t, f, setup{topYAML: fmt.Sprintf("inbound: {allow_cidrs: %s}\n", cidrs)})
		if status, body := e.raw("GET /redgifs/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n"); status != want {
			t.Errorf("allow %s: %d %s, want %d", cidrs, status, body, want)
		}
	}
}
