package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/sirupsen/logrus"
)

func TestAHeaderValueThatCannotBeSentIsATokenError(t *testing.T) {
	api := newUpstream(t, nil)
	for name, up := range map[string]Upstream{
		"a control byte in the format": {Format: "Bearer\x01{token}", Tokens: &fakeTokens{}},
		"CRLF in the token":            {Tokens: &fixedToken{&auth.Token{AccessToken: "t\r\nX-Injected: 1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			up.Name, up.Target = "api", mustURL(t, api.URL)
			p := startProxy(t, up)
			resp := do(t, mustRequest(t, "GET", p.URL+"/api/x", nil))
			body := readJSON(t, resp)
			if resp.StatusCode != 502 || body["error"] != "token_unavailable" || !strings.Contains(fmt.Sprint(body["detail"]), "cannot be sent in a header") {
				t.Errorf("status %d body %v", resp.StatusCode, body)
			}
			if strings.Contains(fmt.Sprint(body), "X-Injected") {
				t.Errorf("the answer shows the token: %v", body)
			}
		})
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// TestAClientThatLeavesWhileWaitingForATokenIs499 (issue 13 item 9): it
// was logged and counted as 502 token_unavailable, as if the token
// endpoint had failed.
func TestAClientThatLeavesWhileWaitingForATokenIs499(t *testing.T) {
	api := newUpstream(t, nil)
	waiting := make(chan struct{})
	tokens := &waitingTokens{waiting: waiting}
	events := make(chan RequestEvent, 1)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := logrus.New()
	logger.Formatter = &logrus.JSONFormatter{}
	logger.Out = lockedWriter{&mu, &logs}
	h, err := New([]Upstream{{Name: "api", Target: mustURL(t, api.URL), Tokens: tokens}},
		Options{Log: logger, OnRequest: func(ev RequestEvent) { events <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-waiting // the request waits for its token; its client leaves
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/x", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered")
	}
	if ev := <-events; ev.Status != statusClientClosedRequest {
		t.Errorf("counted as %d, want 499", ev.Status)
	}
	// The access log line is written once the handler returns, which the
	// event does not wait for.
	logged := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logged(), `"msg":"request"`) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if l := logged(); !strings.Contains(l, `"status":499`) || !strings.Contains(l, `"error":"client_closed_request"`) {
		t.Errorf("access log: %s", l)
	}
}

// waitingTokens is a TokenSource whose token never comes: Token waits
// until the caller gives up, after closing waiting.
type waitingTokens struct {
	waiting chan struct{}
	once    sync.Once
}

func (w *waitingTokens) Token(ctx context.Context) (*auth.Token, error) {
	w.once.Do(func() { close(w.waiting) })
	<-ctx.Done()
	return nil, ctx.Err()
}
func (w *waitingTokens) Invalidate(*auth.Token) {}

// fixedToken is a TokenSource that always hands out tok.
type fixedToken struct{ tok *auth.Token }

func (f *fixedToken) Token(context.Context) (*auth.Token, error) { return f.tok, nil }
func (f *fixedToken) Invalidate(*auth.Token)                     {}

// rejectingAPI answers 401 on every path under /always, and for a
// revoked token everywhere; 200 otherwise.
type rejectingAPI struct {
	mu      sync.Mutex
	revoked map[string]bool
}

func (a *rejectingAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	a.mu.Lock()
	revoked := a.revoked[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	a.mu.Unlock()
	status := http.StatusOK
	if revoked || strings.HasPrefix(r.URL.Path, "/always") {
		status = http.StatusUnauthorized
	}
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("answer")), Request: r}, nil
}

func (a *rejectingAPI) revoke(tokens ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked == nil {
		a.revoked = map[string]bool{}
	}
	for _, t := range tokens {
		a.revoked[t] = true
	}
}

func newRejectingTransport(api *rejectingAPI, tokens TokenSource, logs io.Writer, now func() time.Time) *tokenTransport {
	l := logrus.New()
	l.Out = logs
	return &tokenTransport{base: api, upstream: "api", tokens: tokens, header: "Authorization",
		render: headerTemplate("Bearer {token}"), replayOn: []int{401}, maxBody: 1 << 20, log: l, now: now}
}

func roundTrip(t *testing.T, tr http.RoundTripper, method, path string) int {
	t.Helper()
	req, _ := withRequestState(httptest.NewRequest(method, "http://api.example"+path, nil))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAPathThatAlwaysAnswers401DoesNotDriveRefreshes (issue 13 item 4):
// every request to such a path cost a token request, although the token
// was fine.
func TestAPathThatAlwaysAnswers401DoesNotDriveRefreshes(t *testing.T) {
	api, tokens := &rejectingAPI{}, &fakeTokens{}
	tr := newRejectingTransport(api, tokens, io.Discard, nil)
	// A burst first: the requests that meet the refreshed token while it
	// is fetched, or its replay is on its way, learn from their own 401.
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { roundTrip(t, tr, "GET", "/always/401") })
	}
	wg.Wait()
	if tokens.issued != 2 {
		t.Errorf("a burst of 200 caused %d token fetches, want 2 (the first, and one refresh)", tokens.issued)
	}
	tokens.mu.Lock()
	tokens.cur, tokens.issued = nil, 0 // start again, sequentially
	tokens.mu.Unlock()
	for range 1000 {
		if status := roundTrip(t, tr, "GET", "/always/401"); status != 401 {
			t.Fatalf("status %d, want the upstream's 401", status)
		}
	}
	if tokens.issued != 2 {
		t.Errorf("1000 requests to a path that always answers 401 caused %d token fetches, want 2 (the first, and one refresh)", tokens.issued)
	}
	if status := roundTrip(t, tr, "POST", "/always/401"); status != 401 || tokens.issued != 3 {
		t.Errorf("another method on the path: status %d, %d fetches; want one refresh, as for any new path", status, tokens.issued)
	}

	// A revocation later is recovered at once, on a path that works.
	api.revoke("t1", "t2", "t3")
	if status := roundTrip(t, tr, "GET", "/ok"); status != 200 || tokens.issued != 4 {
		t.Errorf("after a revocation: status %d, %d fetches; want 200 after one refresh", status, tokens.issued)
	}
	// The new token is a new generation: the path costs one refresh again.
	for range 100 {
		roundTrip(t, tr, "GET", "/always/401")
	}
	if tokens.issued != 5 {
		t.Errorf("%d fetches, want 5", tokens.issued)
	}
}

// TestManyPathsThatAlwaysAnswer401CostBoundedRefreshes: a client that
// makes up a new rejected path for each request gets at most a bounded
// number of refreshes per token, and once a minute after that.
func TestManyPathsThatAlwaysAnswer401CostBoundedRefreshes(t *testing.T) {
	api, tokens := &rejectingAPI{}, &fakeTokens{}
	var logs bytes.Buffer
	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newRejectingTransport(api, tokens, &logs, func() time.Time { return clk })
	for i := range 1000 {
		roundTrip(t, tr, "GET", fmt.Sprintf("/always/%d", i))
	}
	if tokens.issued != 1+maxRejectedPaths {
		t.Errorf("1000 distinct rejected paths caused %d token fetches, want %d", tokens.issued, 1+maxRejectedPaths)
	}
	if n := strings.Count(logs.String(), "refused freshly fetched tokens"); n != 1 {
		t.Errorf("said %d times, want once:\n%s", n, logs.String())
	}
	// A revocation now: the rejections of the working path go back as they
	// are until a minute has passed, then one refresh recovers.
	api.revoke(fmt.Sprintf("t%d", tokens.issued))
	before := tokens.issued
	if status := roundTrip(t, tr, "GET", "/ok"); status != 401 || tokens.issued != before {
		t.Errorf("status %d after %d fetches, want the 401 and none", status, tokens.issued-before)
	}
	clk = clk.Add(time.Minute)
	if status := roundTrip(t, tr, "GET", "/ok"); status != 200 || tokens.issued != before+1 {
		t.Errorf("a minute later: status %d after %d fetches, want 200 after one", status, tokens.issued-before)
	}
	// The working token is a new generation, with a new bound.
	for i := range 1000 {
		roundTrip(t, tr, "GET", fmt.Sprintf("/always/again/%d", i))
	}
	if got := tokens.issued - before - 1; got != maxRejectedPaths {
		t.Errorf("%d fetches for the new generation, want %d", got, maxRejectedPaths)
	}
}

// rejectedPaths hashes with a seed it makes on first use, whichever of its
// methods comes first: a zero maphash.Seed panics, in the middle of a
// request.
func TestRejectedPathsWorkInAnyOrderOfFirstUse(t *testing.T) {
	stale, fresh := &auth.Token{AccessToken: "a"}, &auth.Token{AccessToken: "b"}
	now := time.Now()
	for name, first := range map[string]func(r *rejectedPaths){
		"refreshing": func(r *rejectedPaths) { r.refreshing(stale, "GET /x") },
		"refused":    func(r *rejectedPaths) { r.refused(stale, fresh, "GET /x", now) },
		"accepted":   func(r *rejectedPaths) { r.accepted(fresh, "GET /x") },
		"failed":     func(r *rejectedPaths) { r.failed(fresh, "GET /x") },
	} {
		t.Run(name, func(t *testing.T) {
			var r rejectedPaths
			first(&r)
			r.fetched(r.refreshing(stale, "GET /y"), fresh, "GET /y")
			r.refused(stale, fresh, "GET /y", now)
			if skip, _ := r.skip(context.Background(), fresh, "GET /y", now); !skip {
				t.Error("a path that refused the fresh token is not skipped")
			}
		})
	}
}

// hookedTokens is fakeTokens that runs afterIssue, once, inside the Token
// call that issued a new token, after the token is current and before the
// call returns: where the request that caused the fetch has not yet
// gone on, and others can already get the new token.
type hookedTokens struct {
	fakeTokens
	afterIssue  func(*auth.Token)
	invalidated chan *auth.Token // each Invalidate's argument, if not nil
}

func (h *hookedTokens) Token(ctx context.Context) (*auth.Token, error) {
	h.mu.Lock()
	before := h.issued
	h.mu.Unlock()
	tok, err := h.fakeTokens.Token(ctx)
	h.mu.Lock()
	hook := h.afterIssue
	if h.issued == before {
		hook = nil
	} else {
		h.afterIssue = nil
	}
	h.mu.Unlock()
	if hook != nil {
		hook(tok)
	}
	return tok, err
}

func (h *hookedTokens) Invalidate(stale *auth.Token) {
	h.fakeTokens.Invalidate(stale)
	if h.invalidated != nil {
		h.invalidated <- stale
	}
}

// A request that meets the token a refresh has just fetched, and is
// refused with it on the path that refresh was for, before the request
// that caused the refresh has recorded its replay, does not refresh
// again: it learns what the replay is about to. Before, it invalidated
// the fresh token and fetched a third (the burst in
// TestAPathThatAlwaysAnswers401DoesNotDriveRefreshes cost 4 fetches
// under load, once in a CI run).
func TestARequestThatMeetsTheFreshTokenFirstDoesNotRefreshAgain(t *testing.T) {
	api, tokens := &rejectingAPI{}, &hookedTokens{invalidated: make(chan *auth.Token, 8)}
	tr := newRejectingTransport(api, tokens, io.Discard, nil)
	if status := roundTrip(t, tr, "GET", "/ok"); status != 200 {
		t.Fatalf("status %d", status)
	}
	waiting := make(chan struct{}, 8)
	tr.rejected.onWait = func() { waiting <- struct{}{} }
	second := make(chan int, 1)
	tokens.afterIssue = func(fresh *auth.Token) {
		// The refresh for the first request has fetched t2; the second
		// request gets t2 and is refused on the same path.
		go func() { second <- roundTrip(t, tr, "GET", "/always/401") }()
		for {
			select {
			case stale := <-tokens.invalidated:
				if stale == fresh {
					return // it invalidated the token just fetched
				}
			case <-waiting:
				return // it waits for what the first request's replay finds
			}
		}
	}
	if status := roundTrip(t, tr, "GET", "/always/401"); status != 401 {
		t.Errorf("first request: status %d, want the upstream's 401", status)
	}
	if status := <-second; status != 401 {
		t.Errorf("second request: status %d, want the upstream's 401", status)
	}
	tokens.mu.Lock()
	issued := tokens.issued
	tokens.mu.Unlock()
	if issued != 2 {
		t.Errorf("%d tokens fetched, want 2: the first, and one refresh", issued)
	}
}
