package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeclock"
	"time"
)

// fakeSource is a Source whose behaviour a test sets with a function.
type fakeSource struct {
	calls atomic.Int32
	fn    func(ctx context.Context, n int32) (*Token, error)
}

func (s *fakeSource) Token(ctx context.Context) (*Token, error) {
	return s.fn(ctx, s.calls.Add(1))
}

// lifetimeSource issues token "tN" on call N, valid for lifetime from clk's now.
func lifetimeSource(clk *fakeclock.Clock, lifetime time.Duration) *fakeSource {
	return &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		now := clk.Now()
		return &Token{AccessToken: fmt.Sprintf("t%d", n), Obtained: now, Expiry: now.Add(lifetime)}, nil
	}}
}

func noJitter(time.Duration) time.Duration { return 0 }

func TestCacheConcurrentColdStartFetchesOnce(t *testing.T) {
	release := make(chan struct{})
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		<-release
		return &Token{AccessToken: "t"}, nil
	}}
	c := NewCache(src, CacheOptions{})
	const n = 500
	var arrived, done sync.WaitGroup
	arrived.Add(n)
	done.Add(n)
	errs := make(chan error, n)
	for range n {
		go func() {
			defer done.Done()
			arrived.Done()
			tok, err := c.Token(context.Background())
			if err == nil && tok.AccessToken != "t" {
				err = fmt.Errorf("got %q", tok.AccessToken)
			}
			errs <- err
		}()
	}
	arrived.Wait()
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := src.calls.Load(); got != 1 {
		t.Errorf("%d concurrent cold requests made %d token requests, want 1", n, got)
	}
}

func TestCacheFetchIsDetachedFromTheCallerThatStartedIt(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		close(started)
		<-release
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &Token{AccessToken: "t"}, nil
	}}
	c := NewCache(src, CacheOptions{})
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstErr := make(chan error)
	go func() { _, err := c.Token(firstCtx); firstErr <- err }()
	<-started
	secondTok := make(chan *Token)
	go func() { tok, _ := c.Token(context.Background()); secondTok <- tok }()
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client that went away got %v, want context.Canceled", err)
	}
	close(release)
	if tok := <-secondTok; tok == nil || tok.AccessToken != "t" {
		t.Fatalf("the other client got %v", tok)
	}
}

func TestCacheFetchTimeout(t *testing.T) {
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	c := NewCache(src, CacheOptions{FetchTimeout: time.Millisecond})
	_, err := c.Token(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !errorContains(err, "timed out after 1ms") {
		t.Fatalf("got %v", err)
	}
}

func TestCacheRefreshesInBackgroundBeforeExpiry(t *testing.T) {
	clk := newFakeClock()
	blockSecond, fetched := make(chan struct{}), make(chan struct{})
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		if n == 2 {
			<-blockSecond
			defer close(fetched)
		}
		now := clk.Now()
		return &Token{AccessToken: fmt.Sprintf("t%d", n), Obtained: now, Expiry: now.Add(time.Hour)}, nil
	}}
	c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, Now: clk.Now, Jitter: noJitter})
	mustToken(t, c, "t1")
	clk.Advance(49 * time.Minute)
	mustToken(t, c, "t1")
	if src.calls.Load() != 1 {
		t.Fatal("refreshed before the refresh window")
	}
	clk.Advance(time.Minute)
	// The refresh blocks until blockSecond closes: a request that waited
	// for it would hang here instead of returning the current token.
	mustToken(t, c, "t1")
	mustToken(t, c, "t1")
	close(blockSecond)
	<-fetched
	waitFor(t, func() bool { return c.Cached().AccessToken == "t2" })
	mustToken(t, c, "t2")
	if got := src.calls.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

func TestCacheRefreshLeadIsClampedToHalfTheLifetime(t *testing.T) {
	clk := newFakeClock()
	src := lifetimeSource(clk, 300*time.Second)
	c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, Now: clk.Now, Jitter: noJitter})
	mustToken(t, c, "t1")
	clk.Advance(149 * time.Second)
	mustToken(t, c, "t1")
	if src.calls.Load() != 1 {
		t.Fatal("a 300s token with refresh_before 10m was refreshed at once: it would loop")
	}
	clk.Advance(time.Second)
	mustToken(t, c, "t1")
	waitFor(t, func() bool { return c.Cached().AccessToken == "t2" })
	clk.Advance(time.Second)
	mustToken(t, c, "t2")
	if got := src.calls.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

func TestCacheServesUntilExpiryWhenBackgroundRefreshFails(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		if n > 1 {
			return nil, errors.New("endpoint down")
		}
		now := clk.Now()
		return &Token{AccessToken: "t1", Obtained: now, Expiry: now.Add(time.Hour)}, nil
	}}
	c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, Now: clk.Now, Jitter: noJitter})
	mustToken(t, c, "t1")
	clk.Advance(55 * time.Minute)
	mustToken(t, c, "t1")
	waitFor(t, func() bool { return src.calls.Load() == 2 && !c.refreshing.Load() })
	// Backing off: more requests in the same second start no refresh.
	for range 10 {
		mustToken(t, c, "t1")
	}
	if got := src.calls.Load(); got != 2 {
		t.Errorf("%d token requests during the backoff, want 2", got)
	}
	clk.Advance(5 * time.Minute)
	if _, err := c.Token(context.Background()); err == nil {
		t.Error("an expired token was served")
	}
}

func TestCacheInvalidateBurstCausesOneRefresh(t *testing.T) {
	clk := newFakeClock()
	src := lifetimeSource(clk, time.Hour)
	c := NewCache(src, CacheOptions{Now: clk.Now})
	stale := mustToken(t, c, "t1")
	const n = 200
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			c.Invalidate(stale)
			tok, err := c.Token(context.Background())
			if err != nil || tok.AccessToken != "t2" {
				t.Errorf("after invalidation got %v, %v", tok, err)
			}
		}()
	}
	wg.Wait()
	if got := src.calls.Load(); got != 2 {
		t.Errorf("%d 401s caused %d refreshes, want 1", n, got-1)
	}
}

// A caller that saw the invalidated cache just before another caller's
// fetch stored a new token and finished must not fetch again.
func TestCacheLateWaiterReusesTheTokenJustFetched(t *testing.T) {
	clk := newFakeClock()
	src := lifetimeSource(clk, time.Hour)
	c := NewCache(src, CacheOptions{Now: clk.Now})
	c.Invalidate(mustToken(t, c, "t1"))
	mustToken(t, c, "t2")
	// The late caller, which decided to wait before t2 was stored:
	tok, err := c.wait(context.Background(), "rejected")
	if err != nil || tok.AccessToken != "t2" {
		t.Fatalf("got %v, %v", tok, err)
	}
	if got := src.calls.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

func TestCacheInvalidateIgnoresAnOlderToken(t *testing.T) {
	clk := newFakeClock()
	c := NewCache(lifetimeSource(clk, time.Hour), CacheOptions{Now: clk.Now})
	old := mustToken(t, c, "t1")
	c.Invalidate(old)
	mustToken(t, c, "t2")
	c.Invalidate(old)
	mustToken(t, c, "t2")
}

func TestCacheTokenWithoutExpiry(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		return &Token{AccessToken: fmt.Sprintf("t%d", n)}, nil
	}}
	t.Run("kept until invalidated", func(t *testing.T) {
		c := NewCache(src, CacheOptions{RefreshBefore: time.Minute, Now: clk.Now})
		tok := mustToken(t, c, "t1")
		clk.Advance(100 * 365 * 24 * time.Hour)
		mustToken(t, c, "t1")
		c.Invalidate(tok)
		mustToken(t, c, "t2")
	})
	t.Run("default lifetime", func(t *testing.T) {
		c := NewCache(src, CacheOptions{DefaultLifetime: time.Hour, Now: clk.Now})
		tok := mustToken(t, c, "t3")
		if want := clk.Now().Add(time.Hour); !tok.Expiry.Equal(want) {
			t.Errorf("expiry %v, want %v", tok.Expiry, want)
		}
		clk.Advance(time.Hour)
		mustToken(t, c, "t4")
	})
}

func TestCacheBacksOffAfterFailureAndSharesIt(t *testing.T) {
	clk := newFakeClock()
	fail := atomic.Bool{}
	fail.Store(true)
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		if fail.Load() {
			return nil, &RetrieveError{StatusCode: 500}
		}
		return &Token{AccessToken: "ok"}, nil
	}}
	c := NewCache(src, CacheOptions{Now: clk.Now, Jitter: noJitter})
	for i, wantWait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		for _, when := range []string{"the failed fetch", "during the backoff"} {
			_, err := c.Token(context.Background())
			var re *RetrieveError
			var be *BackoffError
			if !errors.As(err, &be) || !errors.As(err, &re) || !be.Until.Equal(clk.Now().Add(wantWait)) || be.Wait != wantWait {
				t.Fatalf("attempt %d, %s: got %v, want a BackoffError until +%v", i, when, err, wantWait)
			}
		}
		if got := src.calls.Load(); got != int32(i+1) {
			t.Fatalf("attempt %d: %d token requests", i, got)
		}
		clk.Advance(wantWait)
	}
	fail.Store(false)
	mustToken(t, c, "ok")
}

func TestCacheHonoursRetryAfterCapped(t *testing.T) {
	for _, tt := range []struct{ retryAfter, want time.Duration }{
		{2 * time.Minute, 2 * time.Minute},
		{time.Hour, 5 * time.Minute}, // capped
	} {
		clk := newFakeClock()
		src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
			return nil, &RetrieveError{StatusCode: 429, RetryAfter: tt.retryAfter}
		}}
		c := NewCache(src, CacheOptions{Now: clk.Now, Jitter: noJitter})
		c.Token(context.Background())
		clk.Advance(tt.want - time.Second)
		_, err := c.Token(context.Background())
		var be *BackoffError
		if !errors.As(err, &be) || !be.Until.Equal(clk.Now().Add(time.Second)) || src.calls.Load() != 1 {
			t.Errorf("Retry-After %v: during the cool-down got %v after %d fetches", tt.retryAfter, err, src.calls.Load())
		}
		clk.Advance(time.Second)
		c.Token(context.Background())
		if src.calls.Load() != 2 {
			t.Errorf("Retry-After %v: no fetch once it had passed", tt.retryAfter)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"120": 2 * time.Minute, "": 0, "soon": 0, "-5": 0,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute, "Wed, 31 Dec 2025 00:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func TestCacheStatusAndOnFetch(t *testing.T) {
	clk := newFakeClock()
	fail := atomic.Bool{}
	var events []string
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		if fail.Load() {
			return nil, errors.New("down")
		}
		return &Token{AccessToken: "t", Expiry: clk.Now().Add(time.Hour)}, nil
	}}
	c := NewCache(src, CacheOptions{Now: clk.Now, Jitter: noJitter,
		OnFetch: func(reason string, err error) { events = append(events, fmt.Sprint(reason, " ", err)) }})
	if st := c.Status(); st.Valid || !st.LastRefresh.IsZero() {
		t.Errorf("empty cache: %+v", st)
	}
	tok := mustToken(t, c, "t")
	if st := c.Status(); !st.Valid || !st.Expiry.Equal(tok.Expiry) || !st.LastRefresh.Equal(clk.Now()) || st.LastError != nil {
		t.Errorf("after a fetch: %+v", st)
	}
	fail.Store(true)
	c.Invalidate(tok)
	c.Token(context.Background())
	if st := c.Status(); st.Valid || st.LastError == nil {
		t.Errorf("after a failure: %+v", st)
	}
	if got := strings.Join(events, "; "); got != "startup <nil>; rejected down" {
		t.Errorf("events %q", got)
	}
}

func mustToken(t *testing.T, c *Cache, want string) *Token {
	t.Helper()
	tok, err := c.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok.AccessToken != want {
		t.Fatalf("got token %q, want %q", tok.AccessToken, want)
	}
	return tok
}

// waitFor waits for a background goroutine's effect without a fixed sleep.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func errorContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
