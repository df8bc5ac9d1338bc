package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/sirupsen/logrus"
)

// fakeTokens is a TokenSource issuing t1, t2, ... one after each
// invalidation, or failing with err.
type fakeTokens struct {
	mu          sync.Mutex
	cur         *auth.Token
	issued      int
	invalidated int
	err         error
	tokenType   string
}

func (f *fakeTokens) Token(context.Context) (*auth.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.cur == nil {
		f.issued++
		f.cur = &auth.Token{AccessToken: fmt.Sprintf("t%d", f.issued), TokenType: f.tokenType}
	}
	return f.cur, nil
}

func (f *fakeTokens) Invalidate(stale *auth.Token) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == stale {
		f.cur = nil
		f.invalidated++
	}
}

// upstreamRecord is what a fake upstream saw of one request.
type upstreamRecord struct {
	method, path, rawPath, query, host string
	header                             http.Header
	body                               []byte
}

type fakeUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []upstreamRecord
	// answer writes the response; nil answers 200 "ok".
	answer func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)
}

func newUpstream(t testing.TB, answer func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)) *fakeUpstream {
	u := &fakeUpstream{answer: answer}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := upstreamRecord{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Header.Clone(), body}
		u.mu.Lock()
		u.seen = append(u.seen, rec)
		u.mu.Unlock()
		if u.answer != nil {
			u.answer(w, r, rec)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *fakeUpstream) requests() []upstreamRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRecord(nil), u.seen...)
}

type testProxy struct {
	*httptest.Server
	logs *bytes.Buffer
	mu   *sync.Mutex
	// served receives once the handler has returned from a request.
	served chan struct{}
}

func startProxy(t *testing.T, ups ...Upstream) testProxy {
	t.Helper()
	return startProxyWith(t, Options{}, ups...)
}

// startProxyWith is startProxy with opts; their Log is the proxy's.
func startProxyWith(t *testing.T, opts Options, ups ...Upstream) testProxy {
	t.Helper()
	var mu sync.Mutex
	buf := &bytes.Buffer{}
	logger := logrus.New()
	logger.Formatter = &logrus.JSONFormatter{}
	logger.Out = lockedWriter{&mu, buf}
	opts.Log = logger
	h, err := New(ups, opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return testProxy{srv, buf, &mu, served}
}

// logged is what the proxy has logged so far, read under the lock its
// writers take: a request still in flight may be writing its line.
func (p testProxy) logged() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p testProxy) accessLines(t *testing.T) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	return lines
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestForwardsWithTokenToTheTargetOnly(t *testing.T) {
	api := newUpstream(t, nil)
	other := newUpstream(t, nil)
	tokens := &fakeTokens{}
	p := startProxy(t,
		Upstream{Name: "api", Target: mustURL(t, api.URL+"/base"), PathPrefix: "/api", Tokens: tokens,
			StaticHeaders: map[string]string{"x-api-key": "k1"}},
		Upstream{Name: "rest", Target: mustURL(t, other.URL), PathPrefix: "", Tokens: &fakeTokens{}},
	)
	req, _ := http.NewRequest("GET", p.URL+"/api/v2/gifs/search?order=trending&count=80", nil)
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer client-own")
	req.Header.Set("X-Forwarded-For", "1.2.3.4")
	req.Header.Set("Connection", "Authorization") // hop-by-hop abuse
	resp := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := api.requests()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	r := got[0]
	if r.path != "/base/v2/gifs/search" || r.query != "order=trending&count=80" {
		t.Errorf("path %q query %q", r.path, r.query)
	}
	if want := strings.TrimPrefix(api.URL, "http://"); r.host != want {
		t.Errorf("Host %q, want the target's %q", r.host, want)
	}
	if auths := r.header.Values("Authorization"); len(auths) != 1 || auths[0] != "Bearer t1" {
		t.Errorf("Authorization %q, want only the injected one", auths)
	}
	if r.header.Get("X-Api-Key") != "k1" {
		t.Errorf("static header missing: %v", r.header)
	}
	if r.header.Get("X-Forwarded-For") == "1.2.3.4" {
		t.Error("client's X-Forwarded-For passed on")
	}
	if len(other.requests()) != 0 {
		t.Error("request reached the catch-all upstream")
	}
	// Everything else goes to the catch-all.
	do(t, mustRequest(t, "GET", p.URL+"/apiary", nil))
	if got := other.requests(); len(got) != 1 || got[0].path != "/apiary" {
		t.Errorf("catch-all got %v", got)
	}
}

func TestHeaderFormats(t *testing.T) {
	for _, tt := range []struct{ header, format, tokenType, want string }{
		{"", "", "bearer", "Bearer t1"},
		{"Authorization", "{token}", "", "t1"}, // the generic guide's API: the raw token
		{"X-Auth", "{token_type} {token}", "bearer", "Bearer t1"},
		{"X-Auth", "{token_type} {token}", "MAC", "MAC t1"},
	} {
		api := newUpstream(t, nil)
		p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{tokenType: tt.tokenType},
			Header: tt.header, Format: tt.format})
		do(t, mustRequest(t, "GET", p.URL+"/x", nil))
		h := tt.header
		if h == "" {
			h = "Authorization"
		}
		if got := api.requests()[0].header.Get(h); got != tt.want {
			t.Errorf("%s %q with type %q: got %q, want %q", h, tt.format, tt.tokenType, got, tt.want)
		}
	}
}

func TestRefusesRequestsForOtherHostsAndDotSegments(t *testing.T) {
	api := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL+"/base"), Tokens: &fakeTokens{}})
	for _, raw := range []string{
		"GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
		"GET /a/../../etc HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /..%2f..%2fadmin HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		status, body := rawRequest(t, p.Listener.Addr().String(), raw)
		if status != 400 || !strings.Contains(body, `"error":"bad_request"`) {
			t.Errorf("%q: status %d body %q, want 400 bad_request", strings.SplitN(raw, "\r\n", 2)[0], status, body)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
	// A path that looks like a host stays a path on the target.
	status, _ := rawRequest(t, p.Listener.Addr().String(), "GET //169.254.169.254/latest HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := api.requests(); status != 200 || len(got) != 1 || got[0].path != "/base//169.254.169.254/latest" {
		t.Errorf("status %d, upstream saw %v", status, got)
	}
}

func TestNoRouteIs404(t *testing.T) {
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, "http://127.0.0.1:1"), PathPrefix: "/api", Tokens: &fakeTokens{}})
	resp := do(t, mustRequest(t, "GET", p.URL+"/other", nil))
	body := readJSON(t, resp)
	if resp.StatusCode != 404 || body["error"] != "no_route" {
		t.Errorf("status %d body %v", resp.StatusCode, body)
	}
}

// rejectFirstToken answers 401 to t1 and echoes the body to anything else.
func rejectFirstToken(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
	if r.Header.Get("Authorization") == "Bearer t1" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Doorkeeper", error="invalid_token", error_description="The access token expired"`)
		w.WriteHeader(401)
		io.WriteString(w, `{"error":"invalid_token"}`)
		return
	}
	w.Write(rec.body)
}

func TestReplaysOnceWithAFreshTokenAndTheSameBody(t *testing.T) {
	api := newUpstream(t, rejectFirstToken)
	tokens := &fakeTokens{}
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: tokens,
		ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
	body := make([]byte, 300<<10)
	rand.Read(body)
	// Chunked (no Content-Length) and sized bodies are both kept.
	for _, chunked := range []bool{false, true} {
		tokens.mu.Lock()
		tokens.cur, tokens.issued = nil, 0
		tokens.mu.Unlock()
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd)
		}
		resp := do(t, mustRequest(t, "POST", p.URL+"/graphql", rd))
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("chunked=%v: status %d, echoed %d bytes", chunked, resp.StatusCode, len(got))
		}
	}
	reqs := api.requests()
	if len(reqs) != 4 {
		t.Fatalf("upstream got %d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		if !bytes.Equal(r.body, body) {
			t.Errorf("request %d: body differs (%d bytes)", i, len(r.body))
		}
	}
	if reqs[1].header.Get("Authorization") != "Bearer t2" {
		t.Errorf("replay carried %q", reqs[1].header.Get("Authorization"))
	}
	lines := p.accessLines(t)
	if len(lines) != 2 || lines[0]["replayed"] != true || lines[0]["status"] != 200.0 {
		t.Errorf("access log %v", lines)
	}
}

// An upstream may reject the token before reading the body; the replay
// must still carry all of it, read from the client after the rejection.
func TestReplayAfterAnEarlyRejectionSendsTheWholeBody(t *testing.T) {
	var got [][]byte
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer t1" {
			w.WriteHeader(401) // without reading a byte of the body
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
	}))
	defer up.Close()
	tokens := &fakeTokens{}
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, up.URL), Tokens: tokens,
		ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
	body := make([]byte, 512<<10)
	rand.Read(body)
	for _, chunked := range []bool{false, true} {
		tokens.mu.Lock()
		tokens.cur, tokens.issued = nil, 0 // so the first attempt carries t1 again
		tokens.mu.Unlock()
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd)
		}
		resp := do(t, mustRequest(t, "POST", p.URL+"/x", rd))
		if resp.StatusCode != 200 {
			t.Fatalf("chunked=%v: status %d", chunked, resp.StatusCode)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d replays reached the upstream, want 2", len(got))
	}
	for i, g := range got {
		if !bytes.Equal(g, body) {
			t.Errorf("replay %d carried %d of %d bytes, or different ones", i, len(g), len(body))
		}
	}
}

func TestSecondRejectionGoesBackToTheClient(t *testing.T) {
	api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		w.WriteHeader(401)
		io.WriteString(w, "still no")
	})
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, ReplayOn: []int{401}})
	resp := do(t, mustRequest(t, "GET", p.URL+"/x", nil))
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || string(got) != "still no" {
		t.Errorf("status %d body %q", resp.StatusCode, got)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("upstream got %d requests, want exactly 2", n)
	}
}

func TestBodyOverTheLimitStreamsAndIsNotReplayed(t *testing.T) {
	api := newUpstream(t, rejectFirstToken)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{},
		ReplayOn: []int{401}, MaxReplayBody: 1000})
	body := bytes.Repeat([]byte("x"), 5000)
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd)
		}
		resp := do(t, mustRequest(t, "POST", p.URL+"/x", rd))
		if resp.StatusCode != 401 {
			t.Errorf("chunked=%v: status %d, want the upstream's 401", chunked, resp.StatusCode)
		}
	}
	reqs := api.requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0].body, body) || !bytes.Equal(reqs[1].body, body) {
		t.Errorf("upstream got %d requests", len(reqs))
	}
}

func TestErrorsMapToStatuses(t *testing.T) {
	stall := make(chan struct{})
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) { <-stall })
	t.Cleanup(func() { close(stall) }) // after newUpstream's: cleanups run last-in first-out
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 50 * time.Millisecond
	closed := httptest.NewServer(nil)
	closed.Close()
	tokenErr := &auth.RetrieveError{StatusCode: 401, ErrorCode: "invalid_client", ErrorDescription: "Client authentication failed"}
	p := startProxy(t,
		Upstream{Name: "tok", PathPrefix: "/tok", Target: mustURL(t, closed.URL), Tokens: &fakeTokens{err: tokenErr}},
		Upstream{Name: "down", PathPrefix: "/down", Target: mustURL(t, closed.URL), Tokens: &fakeTokens{}},
		Upstream{Name: "slow", PathPrefix: "/slow", Target: mustURL(t, slow.URL), Tokens: &fakeTokens{}, Transport: tr},
	)
	for _, tt := range []struct {
		path, code, detail string
		status             int
	}{
		{"/tok/x", "token_unavailable", "token endpoint answered 401 invalid_client: Client authentication failed", 502},
		{"/down/x", "upstream_unreachable", "connection refused", 502},
		{"/slow/x", "upstream_timeout", "timeout awaiting response headers", 504},
	} {
		resp := do(t, mustRequest(t, "GET", p.URL+tt.path, nil))
		body := readJSON(t, resp)
		if resp.StatusCode != tt.status || body["error"] != tt.code || !strings.Contains(fmt.Sprint(body["detail"]), tt.detail) ||
			body["upstream"] != strings.Split(tt.path, "/")[1] || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d body %v", tt.path, resp.StatusCode, body)
		}
	}
}

func TestBackoffAnswersWithRetryAfter(t *testing.T) {
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, "http://127.0.0.1:1"),
		Tokens: &fakeTokens{err: &auth.BackoffError{Err: errors.New("endpoint down"), Wait: 29500 * time.Millisecond}}})
	resp := do(t, mustRequest(t, "GET", p.URL+"/x", nil))
	if resp.StatusCode != 502 || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestStreamsServerSentEvents(t *testing.T) {
	next := make(chan struct{})
	api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-next // the second event waits until the client has read the first
		io.WriteString(w, "data: two\n\n")
	})
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}})
	resp := do(t, mustRequest(t, "GET", p.URL+"/events", nil))
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest %q", rest)
	}
}

// An upgrade whose request has a body keeps the upgraded connection
// writable: the body's replay copy must not wrap it.
func TestUpgradeOfARequestWithABody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: demo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	defer up.Close()
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, up.URL), Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
	conn, err := net.Dial("tcp", p.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nUpgrade: demo\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nhello")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: ping\n" {
		t.Errorf("%q %v", line, err)
	}
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("status %d: body is not JSON: %v", resp.StatusCode, err)
	}
	return m
}

// rawRequest sends raw bytes, for request lines net/http would not send.
func rawRequest(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, raw)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The replay outcome reported for metrics is what the transport saw.
func TestRequestEventsReportTheReplayOutcome(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)
		want   string
	}{
		{"not replayed", nil, ""},
		{"fresh token accepted", rejectFirstToken, "success"},
		{"fresh token rejected too", func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) { w.WriteHeader(401) }, "rejected"},
	} {
		api := newUpstream(t, tt.answer)
		var got []RequestEvent
		var mu sync.Mutex
		h, err := New([]Upstream{{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, ReplayOn: []int{401}}},
			Options{OnRequest: func(ev RequestEvent) { mu.Lock(); got = append(got, ev); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		do(t, mustRequest(t, "GET", srv.URL+"/x", nil))
		srv.Close()
		mu.Lock()
		if len(got) != 1 || got[0].Replay != tt.want || got[0].Upstream != "api" {
			t.Errorf("%s: events %+v, want replay %q", tt.name, got, tt.want)
		}
		mu.Unlock()
	}
}
