package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An upstream answer cut off before its end is not a clean 200 in the
// access log or the request events.
func TestTruncatedUpstreamResponseIsMarked(t *testing.T) {
	for _, tt := range []struct {
		name, answer string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"},
		{"malformed chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\nzz\r\n"},
	} {
		api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
			conn, brw, _ := http.NewResponseController(w).Hijack()
			brw.WriteString(tt.answer)
			brw.Flush()
			conn.Close()
		})
		events := &eventLog{}
		for _, idle := range []time.Duration{0, time.Minute} { // with and without the idle cut-off's wrapper
			p := startProxyWith(t, Options{OnRequest: events.add},
				Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, IdleTimeout: idle})
			resp, err := http.Get(p.URL + "/x")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			<-p.served
			if err == nil {
				t.Errorf("%s: the client got a complete answer", tt.name)
			}
			lines := p.accessLines(t)
			if len(lines) != 1 || lines[0]["error"] != "upstream_truncated" || lines[0]["status"] != 200.0 ||
				!strings.Contains(lines[0]["detail"].(string), "unexpected EOF") && !strings.Contains(lines[0]["detail"].(string), "chunk") {
				t.Errorf("%s, idle %s: access log %v", tt.name, idle, lines)
			}
		}
		for _, ev := range events.all() {
			if !ev.Truncated || ev.Status != 200 {
				t.Errorf("%s: event %+v, want truncated", tt.name, ev)
			}
		}
	}
}

// A client that goes away mid-answer is not the upstream truncating it.
func TestClientLeavingMidAnswerIsNotTruncation(t *testing.T) {
	sent := make(chan struct{})
	api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		w.Header().Set("Content-Length", "1000000")
		io.WriteString(w, strings.Repeat("x", 100<<10)) // more than the proxy buffers, so the client gets the headers
		w.(http.Flusher).Flush()
		close(sent)
		<-r.Context().Done()
	})
	events := &eventLog{}
	p := startProxyWith(t, Options{OnRequest: events.add}, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}})
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(p.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	<-sent
	resp.Body.Close() // the client leaves
	<-p.served
	if evs := events.all(); len(evs) != 1 || evs[0].Truncated {
		t.Errorf("events %+v", evs)
	}
	if l := p.accessLines(t); len(l) != 1 || l[0]["error"] == "upstream_truncated" {
		t.Errorf("access log %v", l)
	}
}
