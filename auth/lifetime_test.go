package auth

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// TestCacheFloorsShortLifetimes (issue 13 item 3): expires_in 0.2 gave a
// 200 ms lifetime, and a token request every 100 ms of traffic.
func TestCacheFloorsShortLifetimes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		floor time.Duration // the option; zero: the default
		want  time.Duration // the lifetime the token gets
		step  time.Duration // between requests: 200 steps stay under half the floor
	}{
		{"default floor", 0, 30 * time.Second, 10 * time.Millisecond},
		{"configured floor", time.Second, time.Second, 2 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			src := lifetimeSource(clk, 200*time.Millisecond)
			var logs bytes.Buffer
			l := logrus.New()
			l.Out = &logs
			c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, MinLifetime: tt.floor, Now: clk.Now, Jitter: noJitter, Log: l})
			start := clk.Now()
			// 200 requests, before the floored token's refresh point (half
			// its lifetime).
			for range 200 {
				if _, err := c.Token(context.Background()); err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() bool { return !c.refreshing.Load() })
				clk.Advance(tt.step)
			}
			if got := src.calls.Load(); got != 1 {
				t.Errorf("200 requests with expires_in 0.2 caused %d token requests, want 1", got)
			}
			tok := c.Cached()
			if got := tok.Expiry.Sub(start); got != tt.want {
				t.Errorf("lifetime %v, want %v", got, tt.want)
			}
			// A 401 still refreshes at once; the warning is not repeated.
			c.Invalidate(tok)
			mustToken(t, c, "t2")
			if n := strings.Count(logs.String(), "shorter than"); n != 1 {
				t.Errorf("the floor was logged %d times, want once:\n%s", n, logs.String())
			}
		})
	}
}

func TestCacheKeepsTokensWithoutExpiryUntilRejected(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
		return &Token{AccessToken: "t", Obtained: clk.Now()}, nil
	}}
	c := NewCache(src, CacheOptions{MinLifetime: time.Minute, Now: clk.Now})
	if tok := mustToken(t, c, "t"); !tok.Expiry.IsZero() {
		t.Errorf("a token without expiry got one: %v", tok.Expiry)
	}
}
