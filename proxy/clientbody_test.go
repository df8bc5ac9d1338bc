package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange sends raw bytes, then, if halfClose, closes its side for
// writing (a client that gave up on its upload but still reads), and
// returns the answer; status 0 means none came.
func rawExchange(t *testing.T, addr, raw string, halfClose bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, raw)
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// brokenBodies are request bodies that are the client's fault.
var brokenBodies = []struct {
	name, request string
	halfClose     bool
}{
	{"chunk size line not hex", "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", false},
	{"chunk size line overlong", "Transfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 5000) + "5\r\nhello\r\n0\r\n\r\n", false},
	{"no CRLF after chunk data", "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", false},
	{"chunked body cut off", "Transfer-Encoding: chunked\r\n\r\n5\r\nhel", true},
	{"sized body cut off", "Content-Length: 100\r\n\r\nhello", true},
}

// A broken request body is the client's: 400, not an upstream failure.
func TestBrokenRequestBodyIsTheClientsFault(t *testing.T) {
	for _, replay := range []bool{false, true} {
		api := newUpstream(t, nil)
		up := Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}}
		if replay {
			up.ReplayOn, up.MaxReplayBody = []int{401}, 1<<20
		}
		p := startProxy(t, up)
		for _, tt := range brokenBodies {
			status, body := rawExchange(t, p.Listener.Addr().String(), "POST /x HTTP/1.1\r\nHost: x\r\n"+tt.request, tt.halfClose)
			if status != 400 || !strings.Contains(body, `"error":"bad_request_body"`) {
				t.Errorf("replay=%v, %s: %d %s, want 400 bad_request_body", replay, tt.name, status, strings.TrimSpace(body))
			}
		}
		for range brokenBodies {
			<-p.served
		}
		for _, l := range p.accessLines(t) {
			if l["status"] != 400.0 || l["error"] != "bad_request_body" {
				t.Errorf("replay=%v: access log %v", replay, l)
			}
		}
	}
}

// A body that stalls gets 408 once it has sent nothing for the timeout.
func TestStalledRequestBodyGets408(t *testing.T) {
	for _, replay := range []bool{false, true} {
		api := newUpstream(t, nil)
		up := Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}}
		if replay {
			up.ReplayOn, up.MaxReplayBody = []int{401}, 1<<20
		}
		p := startProxyWith(t, Options{BodyReadTimeout: 100 * time.Millisecond}, up)
		for _, framing := range []string{"Content-Length: 100\r\n\r\nhello", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"} {
			status, body := rawExchange(t, p.Listener.Addr().String(), "POST /x HTTP/1.1\r\nHost: x\r\n"+framing, false)
			if status != 408 || !strings.Contains(body, `"error":"request_body_timeout"`) {
				t.Errorf("replay=%v, %q: %d %s, want 408 request_body_timeout", replay, framing, status, strings.TrimSpace(body))
			}
		}
	}
}
