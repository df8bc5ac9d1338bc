package auth

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
)

// issuerSource issues token "tN" on call N after delay (a slow token
// endpoint), valid for lifetime from when it answers, and remembers each
// token's real expiry: the cache must never hand out a token past it,
// whatever it believes of the token.
type issuerSource struct {
	*fakeSource
	mu      sync.Mutex
	expires map[string]time.Time
}

func newIssuerSource(lifetime, delay time.Duration) *issuerSource {
	s := &issuerSource{expires: map[string]time.Time{}}
	s.fakeSource = &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		time.Sleep(delay) // synctest's clock
		now := time.Now()
		tok := &Token{AccessToken: fmt.Sprintf("t%d", n), Obtained: now, Expiry: now.Add(lifetime)}
		s.mu.Lock()
		s.expires[tok.AccessToken] = tok.Expiry
		s.mu.Unlock()
		return tok, nil
	}}
	return s
}

func (s *issuerSource) expiryOf(tok *Token) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires[tok.AccessToken]
}

// traffic sends a request every step for d, as a client would, and
// reports the longest any one waited for its token and whether one was
// handed a token its issuer had already expired.
func traffic(t *testing.T, c *Cache, src *issuerSource, step, d time.Duration) (longestWait time.Duration, expired int) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(step) {
		start := time.Now()
		tok, err := c.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		longestWait = max(longestWait, now.Sub(start))
		if !now.Before(src.expiryOf(tok)) {
			expired++
		}
	}
	return longestWait, expired
}

// TestCacheRefreshesShortHonestTokensBeforeTheyExpire (issue 21 item 1):
// the 30 s lifetime floor used a 3 s token for 30 s, so the API refused
// it from its 3rd second on and a request waited for the token endpoint
// on its own path. A token that lives 1 s or more is refreshed in the
// background, ahead of its real expiry, as before the floor: no request
// is handed an expired token or waits for the endpoint while the old
// token is valid, even with an endpoint that takes 40% of the lifetime
// to answer.
func TestCacheRefreshesShortHonestTokensBeforeTheyExpire(t *testing.T) {
	for _, lifetime := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second} {
		t.Run(lifetime.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				delay := lifetime * 4 / 10
				src := newIssuerSource(lifetime, delay)
				var mu sync.Mutex
				reasons := map[string]int{}
				c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, MinRefreshInterval: DefaultMinRefreshInterval,
					Jitter: noJitter, OnFetch: func(reason string, err error) {
						mu.Lock()
						reasons[reason]++
						mu.Unlock()
					}})
				defer c.Close()
				if _, err := c.Token(context.Background()); err != nil { // the cold start waits, as it must
					t.Fatal(err)
				}
				longest, expired := traffic(t, c, src, 20*time.Millisecond, 4*lifetime)
				synctest.Wait()
				if expired > 0 {
					t.Errorf("%d requests were handed a token its issuer had expired", expired)
				}
				if longest > 0 {
					t.Errorf("a request waited %v for the token endpoint while a valid token was cached", longest)
				}
				mu.Lock()
				defer mu.Unlock()
				if reasons["expired"] > 0 || reasons["expiry"] < 4 {
					t.Errorf("token requests by reason %v: want none on a request's path after startup (expired), and a background refresh (expiry) every half lifetime", reasons)
				}
			})
		})
	}
}

// TestCacheBoundsHowOftenATinyLifetimeIsFetched: expires_in 0.2 gave a
// token request every 100 ms of traffic. Fetches are spaced by
// MinRefreshInterval instead of a token being believed longer than its
// issuer said: 200 requests over 2 s cost at most 5 token requests, none
// is handed an expired token, and none waits longer than the interval.
func TestCacheBoundsHowOftenATinyLifetimeIsFetched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newIssuerSource(200*time.Millisecond, 0)
		var logs bytes.Buffer
		l := logrus.New()
		l.Out = &logs
		c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, MinRefreshInterval: DefaultMinRefreshInterval, Jitter: noJitter, Log: l})
		defer c.Close()
		longest, expired := traffic(t, c, src, 10*time.Millisecond, 2*time.Second)
		synctest.Wait()
		if got := src.calls.Load(); got > 5 {
			t.Errorf("200 requests over 2s with expires_in 0.2 caused %d token requests, want at most 5", got)
		}
		if expired > 0 {
			t.Errorf("%d requests were handed a token its issuer had expired", expired)
		}
		if longest > DefaultMinRefreshInterval {
			t.Errorf("a request waited %v, longer than the interval %v", longest, DefaultMinRefreshInterval)
		}
		// A 401 still replaces the token at once, whatever the interval.
		before := src.calls.Load()
		start := time.Now()
		c.Invalidate(c.Cached())
		if _, err := c.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		if src.calls.Load() != before+1 || time.Since(start) != 0 {
			t.Errorf("a rejected token was not replaced at once: %d token requests, %v", src.calls.Load()-before, time.Since(start))
		}
		if n := strings.Count(logs.String(), "shorter than"); n != 1 {
			t.Errorf("the short lifetime was logged %d times, want once:\n%s", n, logs.String())
		}
	})
}

func TestCacheKeepsTokensWithoutExpiryUntilRejected(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		return &Token{AccessToken: "t", Obtained: clk.Now()}, nil
	}}
	c := NewCache(src, CacheOptions{MinRefreshInterval: time.Minute, Now: clk.Now})
	if tok := mustToken(t, c, "t"); !tok.Expiry.IsZero() {
		t.Errorf("a token without expiry got one: %v", tok.Expiry)
	}
}
