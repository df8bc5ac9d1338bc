package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// CacheOptions tunes a Cache. The zero value of each field has the meaning
// its comment gives.
type CacheOptions struct {
	// RefreshBefore is how long before expiry a background refresh starts.
	// It is clamped to half the token's lifetime so that a short-lived
	// token is not refreshed on every request. Zero refreshes only once
	// the token has expired.
	RefreshBefore time.Duration
	// DefaultLifetime is given to tokens whose response had no expiry.
	// Zero keeps such a token until Invalidate.
	DefaultLifetime time.Duration
	// MinRefreshInterval is the least time between the starts of two
	// token requests made because a token was due or expired. A token
	// that lives shorter (expires_in 0.2) is used until its issuer's
	// expiry, never longer, and the requests after it wait out the
	// interval instead of costing a token request each. A rejected token
	// (Invalidate) is replaced at once. Zero: no bound.
	MinRefreshInterval time.Duration
	// FetchTimeout bounds one token request; zero means 10s.
	FetchTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed fetch before
	// the next one; zero means 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps how long a token endpoint's Retry-After (on a 429
	// or 503) holds back the next fetch; zero means 5m.
	MaxRetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns a random duration in [0, max); nil means math/rand.
	// Tests pass a function returning 0.
	Jitter func(max time.Duration) time.Duration
	// Log receives token events (never a token); nil discards them.
	Log logrus.FieldLogger
	// Initial is served until it is due for refresh, as if just fetched:
	// a token kept across a restart. Nil starts empty.
	Initial *Token
	// OnFetch, if set, is called after every token request with why it
	// was made ("startup", "expiry", "expired", "rejected") and its error.
	// It must not block.
	OnFetch func(reason string, err error)

	// Shared, if set, is a store shared with the other replicas: a token
	// is taken from it when usable, and otherwise fetched by one replica
	// at a time under its lock. SharedKey names this cache's token there.
	Shared    Shared
	SharedKey string
	// LockTTL is how long a replica may hold the fetch lock, and so how
	// long the others wait for one that died; zero means 15s. It is kept
	// longer than FetchTimeout, so a live holder never loses its lock.
	LockTTL time.Duration
	// LocalFallback lets the cache fetch on its own while Shared is
	// unreachable. Leave it false for a grant whose tokens must never be
	// redeemed twice (refresh tokens): it then fails closed.
	LocalFallback bool
	// OnShared, if set, is called with what each fetch through Shared did:
	// "adopted" (another replica's token), "fetched" (fetched and shared),
	// "fallback" (fetched alone, the store being unreachable) or
	// "unavailable" (failed closed). It must not block.
	OnShared func(event string)

	// TracerProvider, if set, records the waits for a token, the fetches
	// and the shared store's calls as spans (see trace.go); nil records
	// nothing and costs nothing.
	TracerProvider trace.TracerProvider
}

// Status is a snapshot of a Cache, for health checks and /status. It
// never holds the token itself.
type Status struct {
	// Valid tells whether a usable token is cached.
	Valid bool
	// Expiry of the cached token; zero if none or if it has no expiry.
	Expiry time.Time
	// LastRefresh is when a token was last fetched successfully.
	LastRefresh time.Time
	// LastError is the last fetch's error, until a fetch succeeds.
	LastError error
	// Shared tells whether the cache shares tokens with other replicas;
	// SharedError is the shared store's last error, until it answers again;
	// LocalFallback, whether the cache then fetches alone.
	Shared        bool
	SharedError   error
	LocalFallback bool
}

// Cache wraps a Source, usually a grant, and hands out its token until the
// token is due for refresh. Reads take no lock. Concurrent callers that
// find no valid token share one fetch, which runs on a context detached
// from any one caller so that a client going away cannot fail the others.
type Cache struct {
	src      Source
	opts     CacheOptions
	identity Identity // set by NewSource; zero for a hand-built Cache
	dpop     *DPoPKey // set by NewSource with DPoP; see DPoPKey

	cur        atomic.Pointer[cachedToken]
	group      singleflight.Group
	refreshing atomic.Bool
	shortLived atomic.Bool  // the short-lifetime warning was logged
	lastFetch  atomic.Int64 // when the last token request began, Unix ns; 0: none yet

	// The background refresh goroutine is the Cache's own: bg counts it,
	// and once closed is set (under bgMu, so no Add follows Close's
	// Wait) none is started.
	bgMu   sync.Mutex
	bg     sync.WaitGroup
	closed bool

	mu          sync.Mutex // guards the failure state below
	failures    int
	retryAt     time.Time
	lastErr     error
	lastRefresh time.Time
	sharedErr   error

	trace cacheTracer // off unless CacheOptions.TracerProvider is set
}

type cachedToken struct {
	tok       *Token
	refreshAt time.Time // zero: never refreshed early
	id        string    // the token's ID in the shared store; "" if not shared
	epoch     int64     // and its epoch there
}

var _ Source = (*Cache)(nil)

// NewCache returns a Cache over src.
func NewCache(src Source, opts CacheOptions) *Cache {
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 15 * time.Second
	}
	// A holder whose lock ran out mid-request would let a second replica
	// redeem the same refresh token.
	opts.LockTTL = max(opts.LockTTL, opts.FetchTimeout+time.Second)
	if opts.Jitter == nil {
		opts.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if opts.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		opts.Log = l
	}
	c := &Cache{src: src, opts: opts}
	c.trace.init(opts.TracerProvider)
	if c.trace.tracer != nil && opts.Shared != nil {
		c.opts.Shared = tracedShared{Shared: opts.Shared, tracer: c.trace.tracer}
	}
	if t := opts.Initial; t != nil && t.ValidAt(opts.Now()) {
		c.cur.Store(&cachedToken{tok: t, refreshAt: c.refreshAt(t, opts.Now(), true)})
	}
	return c
}

// Token returns the cached token while it is valid, starting a background
// refresh once it is due; otherwise it waits for a fetch, sharing it with
// every other caller. ctx bounds only this caller's wait.
func (c *Cache) Token(ctx context.Context) (*Token, error) {
	now := c.opts.Now()
	e := c.cur.Load()
	if e != nil && e.tok.ValidAt(now) {
		if !e.refreshAt.IsZero() && !now.Before(e.refreshAt) {
			c.refreshInBackground(now)
		}
		if c.trace.tracer != nil {
			c.trace.hit(ctx)
		}
		return e.tok, nil
	}
	// The reason only labels the log line of the fetch this caller starts.
	reason := "expired"
	switch {
	case e == nil:
		reason = "startup"
	case e.tok == nil: // Invalidate leaves an empty entry
		reason = "rejected"
	}
	return c.tracedWait(ctx, reason)
}

// Invalidate drops stale from the cache, but only if it is still the
// cached token: after a burst of 401s for the same token the first call
// clears it and the rest find a newer token in place, so the burst causes
// one refresh. With a shared store, the fetch that follows reports the
// 401 there (Shared.Reject), so that the fleet, too, refreshes once.
func (c *Cache) Invalidate(stale *Token) {
	e := c.cur.Load()
	if e == nil || e.tok != stale {
		return
	}
	if c.cur.CompareAndSwap(e, &cachedToken{id: e.id, epoch: e.epoch}) {
		c.opts.Log.Info("token rejected upstream; fetching a new one")
	}
}

// Identity is what NewSource computed of the settings it built the cache
// from; the zero Identity for a Cache built with NewCache.
func (c *Cache) Identity() Identity { return c.identity }

// Close stops refreshing in the background and waits for a refresh that
// is under way: it is not cut short, as a refresh token the endpoint
// rotated must reach the Store. The cache still answers Token, fetching
// in the caller's own time, so requests that hold it after a reload
// replaced it finish normally.
func (c *Cache) Close() error {
	c.bgMu.Lock()
	c.closed = true
	c.bgMu.Unlock()
	c.bg.Wait()
	return nil
}

// Status returns a snapshot of the cache.
func (c *Cache) Status() Status {
	var st Status
	if e := c.cur.Load(); e != nil && e.tok.ValidAt(c.opts.Now()) {
		st.Valid, st.Expiry = true, e.tok.Expiry
	}
	c.mu.Lock()
	st.LastRefresh, st.LastError, st.SharedError = c.lastRefresh, c.lastErr, c.sharedErr
	c.mu.Unlock()
	st.Shared, st.LocalFallback = c.opts.Shared != nil, c.opts.LocalFallback
	return st
}

// Cached returns the cached token without fetching, or nil.
func (c *Cache) Cached() *Token {
	if e := c.cur.Load(); e != nil {
		return e.tok
	}
	return nil
}

func (c *Cache) wait(ctx context.Context, reason string) (*Token, error) {
	if err := c.backoff(c.opts.Now()); err != nil {
		return nil, err
	}
	ch := c.group.DoChan("fetch", func() (any, error) {
		// singleflight merges only fetches in flight: a caller that found
		// no token just before another fetch stored one and finished would
		// fetch again. Look once more before asking the endpoint.
		if e := c.cur.Load(); e != nil && e.tok.ValidAt(c.opts.Now()) {
			return e.tok, nil
		}
		// A token that expired before its refresh could start (it lived
		// shorter than MinRefreshInterval) is replaced once the interval
		// allows; one that was rejected, or none yet, at once.
		if reason == "expired" {
			c.holdForInterval()
		}
		// Detached: the fetch serves every waiter, not only this caller.
		return c.tracedFetch(context.WithoutCancel(ctx), reason)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Token), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refreshInBackground starts at most one refresh at a time and none while
// backing off after a failure or once closed; the current token keeps
// being served.
func (c *Cache) refreshInBackground(now time.Time) {
	if !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	if c.backoff(now) != nil {
		c.refreshing.Store(false)
		return
	}
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		c.refreshing.Store(false)
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.refreshing.Store(false)
		c.group.Do("fetch", func() (any, error) {
			return c.tracedFetch(context.Background(), "expiry")
		})
	}()
}

func (c *Cache) fetch(ctx context.Context, reason string) (*Token, error) {
	var (
		tok *Token
		st  *SharedToken // nil unless the token is in the shared store
		err error
	)
	c.lastFetch.Store(c.opts.Now().UnixNano())
	if c.opts.Shared != nil {
		tok, st, err = c.fetchShared(ctx, reason, c.cur.Load())
	} else {
		tok, err = c.request(ctx, reason)
	}
	now := c.opts.Now()
	if err != nil {
		wait := c.recordFailure(now, err)
		// A login needed and a store gone are said once, where found.
		if !isReauth(err) && !errors.Is(err, ErrSharedStoreUnavailable) {
			c.opts.Log.WithFields(logrus.Fields{"reason": reason, "retry_in": wait.Round(time.Millisecond).String()}).
				WithError(err).Warn("token fetch failed")
		}
		// Every waiter learns when the next attempt will be, so callers can
		// tell their clients when to retry.
		return nil, &BackoffError{Err: err, Until: now.Add(wait), Wait: wait}
	}
	e := &cachedToken{tok: tok, refreshAt: c.refreshAt(tok, now, true)}
	if st != nil {
		e.id, e.epoch = st.ID, st.Epoch
	}
	c.cur.Store(e)
	c.recordSuccess(now)
	return tok, nil
}

// request asks the source for a token: one token request, logged and
// reported to OnFetch. A token without expiry gets DefaultLifetime here,
// before it is shared, so that every replica agrees on when it is due.
func (c *Cache) request(ctx context.Context, reason string) (*Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	tok, err := c.src.Token(ctx)
	now := c.opts.Now()
	if err == nil && tok == nil {
		err = errors.New("token source returned no token")
	}
	if c.opts.OnFetch != nil {
		c.opts.OnFetch(reason, err)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("token request timed out after %s: %w", c.opts.FetchTimeout, err)
		}
		return nil, err
	}
	if tok.Expiry.IsZero() && c.opts.DefaultLifetime > 0 {
		t := *tok
		t.Expiry = now.Add(c.opts.DefaultLifetime)
		tok = &t
	}
	c.noteLifetime(tok, now)
	fields := logrus.Fields{"reason": reason}
	if !tok.Expiry.IsZero() {
		fields["expires_in"] = tok.Expiry.Sub(now).Round(time.Second).String()
	} else {
		fields["expires_in"] = "until rejected"
	}
	c.opts.Log.WithFields(fields).Info("token fetched")
	return tok, nil
}
