package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// eventLog collects RequestEvents.
type eventLog struct {
	mu     sync.Mutex
	events []RequestEvent
}

func (l *eventLog) add(ev RequestEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) all() []RequestEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RequestEvent(nil), l.events...)
}

// A body whose copy would take the replay copies of every request over
// the budget streams through without one: its rejection goes back to the
// client, and the skip is reported.
func TestBodyOverTheReplayBudgetStreamsWithoutReplay(t *testing.T) {
	const size = 64 << 10
	arrived, release := make(chan struct{}), make(chan struct{})
	api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		if r.Header.Get("X-Hold") != "" {
			close(arrived)
			<-release // its copy is held meanwhile
			return
		}
		rejectFirstToken(w, r, rec)
	})
	budget := NewReplayBudget(size + size/2)
	events := &eventLog{}
	p := startProxyWith(t, Options{ReplayBudget: budget, OnRequest: events.add},
		Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
	held := make(chan *http.Response)
	go func() {
		req := mustRequest(t, "POST", p.URL+"/held", bytes.NewReader(make([]byte, size)))
		req.Header.Set("X-Hold", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		held <- resp
	}()
	<-arrived
	if got := budget.InUse(); got != size {
		t.Errorf("in use while one %d-byte copy is held: %d", size, got)
	}
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(make([]byte, size))
		if chunked {
			rd = io.MultiReader(rd)
		}
		resp := do(t, mustRequest(t, "POST", p.URL+"/x", rd))
		if resp.StatusCode != 401 {
			t.Errorf("chunked=%v: status %d, want the upstream's 401, not replayed", chunked, resp.StatusCode)
		}
		<-p.served
	}
	if got := budget.InUse(); got != size {
		t.Errorf("in use after the skipped requests: %d, want %d", got, size)
	}
	close(release)
	if resp := <-held; resp != nil {
		resp.Body.Close()
	}
	<-p.served
	if got := budget.InUse(); got != 0 {
		t.Errorf("in use after every request: %d", got)
	}
	skipped := 0
	for _, ev := range events.all() {
		if ev.ReplaySkipped == "memory_budget" {
			skipped++
		}
	}
	if skipped != 2 {
		t.Errorf("events %+v, want 2 skipped for the memory budget", events.all())
	}
	for _, l := range p.accessLines(t) {
		if l["path"] == "/x" && l["replay_skipped"] != "memory_budget" {
			t.Errorf("access log %v", l)
		}
	}
}

// A chunked body takes more of the budget as it arrives.
func TestChunkedBodyGrowsItsShareOfTheBudget(t *testing.T) {
	const size = 300 << 10
	var inUse int64
	budget := NewReplayBudget(1 << 20)
	api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		inUse = budget.InUse() // the whole body has been read and copied
		rejectFirstToken(w, r, rec)
	})
	tokens := &fakeTokens{}
	events := &eventLog{}
	p := startProxyWith(t, Options{ReplayBudget: budget, OnRequest: events.add},
		Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: tokens, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
	resp := do(t, mustRequest(t, "POST", p.URL+"/x", io.MultiReader(bytes.NewReader(make([]byte, size)))))
	io.ReadAll(resp.Body)
	<-p.served
	if resp.StatusCode != 200 {
		t.Errorf("within the budget: status %d, want 200 after the replay", resp.StatusCode)
	}
	if inUse < size || inUse > 2*size {
		t.Errorf("a %d-byte chunked copy held %d bytes of the budget", size, inUse)
	}
	budget.SetLimit(100 << 10)
	tokens.mu.Lock()
	tokens.cur, tokens.issued = nil, 0
	tokens.mu.Unlock()
	resp = do(t, mustRequest(t, "POST", p.URL+"/x", io.MultiReader(bytes.NewReader(make([]byte, size)))))
	<-p.served
	if resp.StatusCode != 401 {
		t.Errorf("over the budget: status %d, want the upstream's 401", resp.StatusCode)
	}
	if inUse > 100<<10 {
		t.Errorf("a copy took %d bytes of a 100 KiB budget", inUse)
	}
	if evs := events.all(); len(evs) != 2 || evs[0].ReplaySkipped != "" || evs[1].ReplaySkipped != "memory_budget" {
		t.Errorf("events %+v", evs)
	}
	if got := budget.InUse(); got != 0 {
		t.Errorf("in use after every request: %d", got)
	}
}

// A zero budget keeps no body, but a request without one still replays.
func TestZeroReplayBudgetReplaysOnlyRequestsWithoutBody(t *testing.T) {
	api := newUpstream(t, rejectFirstToken)
	tokens := &fakeTokens{}
	p := startProxyWith(t, Options{ReplayBudget: NewReplayBudget(0)},
		Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: tokens, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
	if resp := do(t, mustRequest(t, "GET", p.URL+"/x", nil)); resp.StatusCode != 200 {
		t.Errorf("GET: status %d, want 200 after the replay", resp.StatusCode)
	}
	tokens.mu.Lock()
	tokens.cur, tokens.issued = nil, 0
	tokens.mu.Unlock()
	if resp := do(t, mustRequest(t, "POST", p.URL+"/x", strings.NewReader("body"))); resp.StatusCode != 401 {
		t.Errorf("POST: status %d, want the upstream's 401", resp.StatusCode)
	}
}

// Whatever becomes of a request, its copy's share of the budget comes
// back.
func TestReplayBudgetIsReturnedOnEveryPath(t *testing.T) {
	const size = 64 << 10
	body := strings.Repeat("x", size)
	closeConn := func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}
	for _, tt := range []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)
		request string // raw, after the request line; "" sends body normally
		half    bool
		status  int
	}{
		{"success", nil, "", false, 200},
		{"replayed", rejectFirstToken, "", false, 200},
		{"rejected twice", func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) { w.WriteHeader(401) }, "", false, 401},
		{"upstream failed", closeConn, "", false, 502},
		{"client aborted", nil, "Content-Length: 65536\r\n\r\n" + body[:1000], true, 400},
		{"chunked client aborted", nil, "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + body[:1000] + "\r\n", true, 400},
		{"client stalled", nil, "Content-Length: 65536\r\n\r\n" + body[:1000], false, 408},
		{"malformed", nil, "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + body[:1000] + "\r\nzz\r\n", false, 400},
	} {
		budget := NewReplayBudget(1 << 20)
		api := newUpstream(t, tt.answer)
		p := startProxyWith(t, Options{ReplayBudget: budget, BodyReadTimeout: 200 * time.Millisecond},
			Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
		var status int
		if tt.request == "" {
			resp := do(t, mustRequest(t, "POST", p.URL+"/x", strings.NewReader(body)))
			io.ReadAll(resp.Body)
			status = resp.StatusCode
		} else {
			status, _ = rawExchange(t, p.Listener.Addr().String(), "POST /x HTTP/1.1\r\nHost: x\r\n"+tt.request, tt.half)
		}
		<-p.served
		if status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, status, tt.status)
		}
		if got := budget.InUse(); got != 0 {
			t.Errorf("%s: %d bytes of the budget still taken", tt.name, got)
		}
	}
}

// failAfterInvalidate issues one token, and fails every fetch after it is
// invalidated.
type failAfterInvalidate struct {
	mu  sync.Mutex
	tok *auth.Token
}

func (f *failAfterInvalidate) Token(context.Context) (*auth.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok == nil {
		return nil, errors.New("token endpoint down")
	}
	return f.tok, nil
}

func (f *failAfterInvalidate) Invalidate(stale *auth.Token) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok == stale {
		f.tok = nil
	}
}

// The ways out of a replay that TestReplayBudgetIsReturnedOnEveryPath does
// not take: a path that has refused a fresh token before (answered with
// no refresh), a rejection too large to keep while deciding, and a
// refresh that fails.
func TestReplayBudgetIsReturnedWhenTheReplayIsNotMade(t *testing.T) {
	body := strings.Repeat("x", 64<<10)
	always401 := func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) { w.WriteHeader(401) }
	huge401 := func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		w.WriteHeader(401)
		io.WriteString(w, strings.Repeat("n", maxKeptRejection+1))
	}
	for _, tt := range []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)
		tokens   TokenSource
		requests int
		status   int
	}{
		{"a path that refuses fresh tokens, again", always401, &fakeTokens{}, 3, 401},
		{"a rejection too large to keep", huge401, &fakeTokens{}, 1, 401},
		{"the refresh fails", always401, &failAfterInvalidate{tok: &auth.Token{AccessToken: "t1"}}, 1, 502},
	} {
		budget := NewReplayBudget(1 << 20)
		api := newUpstream(t, tt.answer)
		p := startProxyWith(t, Options{ReplayBudget: budget},
			Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: tt.tokens, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
		for i := range tt.requests {
			resp := do(t, mustRequest(t, "POST", p.URL+"/x", strings.NewReader(body)))
			io.ReadAll(resp.Body)
			resp.Body.Close()
			<-p.served
			if resp.StatusCode != tt.status {
				t.Errorf("%s, request %d: status %d, want %d", tt.name, i+1, resp.StatusCode, tt.status)
			}
			if got := budget.InUse(); got != 0 {
				t.Errorf("%s, request %d: %d bytes of the budget still taken", tt.name, i+1, got)
			}
		}
	}
}
