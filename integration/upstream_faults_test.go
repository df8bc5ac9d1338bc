package integration

// Promises about a misbehaving upstream API.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

func TestUpstreamRedirectToAnotherHostIsPassedBackNotFollowed(t *testing.T) {
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer other.Close()
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		http.Redirect(w, r, other.URL+"/collect", http.StatusFound)
		return true
	})
	e.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	status, _, hdr := e.do("GET", f.APIPath, nil)
	if status != 302 || hdr.Get("Location") != other.URL+"/collect" {
		t.Errorf("status %d Location %q", status, hdr.Get("Location"))
	}
	if reached.Load() != 0 {
		t.Error("the proxy followed the redirect to another host")
	}
}

func TestUpstreamSlowHeadersGiveA504AfterUpstreamTimeout(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{upstreamYAML: "    upstream_timeout: 200ms\n"})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		<-r.Context().Done()
		return true
	})
	e.expectError(f.APIPath, 504, "upstream_timeout", "timeout awaiting response headers")
}

func TestUpstreamStalledBodyIsCutOff(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{upstreamYAML: "    upstream_idle_timeout: 200ms\n"})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "the first ten")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stalls until the proxy gives up
		return true
	})
	// Headers and the first bytes may still sit in the proxy's buffer when
	// the connection is aborted, so the client sees the cut either before
	// or during the body; what it must never see is a complete response.
	resp, err := e.client.Get(e.url + f.APIPath)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("a stalled body arrived as complete: %q", got)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "upstream sent nothing for 200ms; response cut off") || !strings.Contains(logs, `"error":"upstream_idle_timeout"`) {
		t.Error("the logs do not say the response was cut off")
	}
}

func TestLargeResponseStreamsWithFlatMemory(t *testing.T) {
	const size = 1 << 30
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := make([]byte, 256<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return true
			}
		}
		return true
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := e.client.Get(e.url + f.APIPath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("copied %d bytes, %v", n, err)
	}
	// Everything allocated in the process during the transfer: the fake
	// API, the proxy and the client. Buffering the body would allocate it
	// at least once.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("a 1 GiB response allocated %d MiB", alloc>>20)
	}
	t.Logf("1 GiB proxied; %d KiB allocated in all", (after.TotalAlloc-before.TotalAlloc)>>10)
}

func TestServerSentEventsReachTheClientAsTheyAreSent(t *testing.T) {
	f := fakeapi.ProductHunt()
	e := start(t, f, setup{})
	next, sendNext := releasedAtCleanup(t)
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-next // the second event is not sent until the client has the first
		io.WriteString(w, "data: second\n\n")
		return true
	})
	resp, err := e.client.Get(e.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	sendNext()
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("then %q", rest)
	}
}

func TestWebSocketUpgradeCarriesTheToken(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		if r.Header.Get("Upgrade") != "websocket" {
			return false
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n') // echo one line, as a stand-in for frames
		brw.WriteString("echo: " + line)
		brw.Flush()
		return true
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://")[:strings.Index(strings.TrimPrefix(e.url, "http://"), "/")])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /redgifs/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	io.WriteString(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Errorf("over the upgraded connection: %q, %v", line, err)
	}
	reqs := e.api.APIRequests()
	if len(reqs) != 1 || !reqs[0].Authorized || reqs[0].Header.Get("Upgrade") != "websocket" {
		t.Errorf("the handshake reached the API as %+v", reqs)
	}
}

func TestClientDisconnectCancelsTheUpstreamRequest(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		close(arrived)
		<-r.Context().Done()
		close(cancelled)
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+f.APIPath, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client got %v", err)
	}
	<-cancelled // the upstream saw its request cancelled; a leak would hang here
	waitFor(t, "the access log line", func() bool { return strings.Contains(e.logs.String(), `"status":499`) })
}

// An answer the upstream breaks off is not a clean 200: the access log
// and the metrics say it was truncated.
func TestUpstreamTruncatedAnswerIsLoggedAndCounted(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return false
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
		brw.Flush()
		conn.Close()
		return true
	})
	if resp, err := e.client.Get(e.url + f.APIPath); err == nil {
		if b, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("a truncated answer arrived as complete: %q", b)
		}
		resp.Body.Close()
	}
	waitFor(t, "the access log line", func() bool { return strings.Contains(e.logs.String(), `"msg":"request"`) })
	if logs := e.logs.String(); !strings.Contains(logs, `"error":"upstream_truncated"`) || !strings.Contains(logs, `"expected_bytes":1000`) {
		t.Error("the access log does not say the answer was truncated")
	}
	if _, metrics := e.adminGet("/metrics"); !strings.Contains(metrics, `authproxy_upstream_truncated_total{upstream="redgifs"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(metrics, "truncated"))
	}
}

// TestBinaryStalledRejectionBodyIsCutOffByTheIdleTimeout: on a 401 the
// proxy reads the answer's body before deciding on a replay; an upstream
// that sends the 401's headers and then nothing must be cut off by
// upstream_idle_timeout there too, as it is in any other body, and the
// client, which has had nothing yet, answered rather than held until it
// gives up. The client's own deadline, far longer, only detects a hang.
func TestBinaryStalledRejectionBodyIsCutOffByTheIdleTimeout(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	api := fakeapi.New(f, clientID, clientSecret, nil)
	apiURL := newServer(t, api)
	stall, _ := releasedAtCleanup(t)
	api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusUnauthorized)
		w.(http.Flusher).Flush()
		select { // the body never comes
		case <-r.Context().Done():
		case <-stall:
		}
		return true
	})
	p := runBinary(t, bin, configFor(t, f, apiURL, setup{upstreamYAML: "    upstream_idle_timeout: 1s\n"}))
	client := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := client.Get("http://" + p.addr + "/redgifs" + f.APIPath)
	if err != nil {
		t.Fatalf("no answer after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("answered %d after %s: %s", resp.StatusCode, time.Since(start).Round(time.Millisecond), body)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), `"error":"upstream_idle_timeout"`) {
		t.Errorf("got %d %s, want 504 upstream_idle_timeout", resp.StatusCode, body)
	}
	if n := len(api.APIRequests()); n != 1 {
		t.Errorf("the API got %d requests, want the one: a stalled answer is not replayed", n)
	}
	waitFor(t, "the access log line", func() bool { return strings.Contains(p.logs.String(), `"msg":"request"`) })
	if logs := p.logs.String(); !strings.Contains(logs, `"error":"upstream_idle_timeout"`) || !strings.Contains(logs, `"status":504`) {
		t.Error("the access log does not say the answer was cut off")
	}
}
