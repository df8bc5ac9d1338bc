package auth

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// The background refresh is the cache's own: Close waits for one under
// way (a rotated refresh token must reach the store) and starts none
// after, while the cache goes on answering from what it holds.
func TestCloseWaitsForTheBackgroundRefreshAndStartsNoOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		src := &fakeSource{fn: func(ctx context.Context, n int32) (*Token, error) {
			if n == 2 {
				<-gate // the background refresh, held
			}
			now := time.Now()
			return &Token{AccessToken: "t", Obtained: now, Expiry: now.Add(time.Hour)}, nil
		}}
		c := NewCache(src, CacheOptions{RefreshBefore: 10 * time.Minute, Jitter: noJitter})
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(55 * time.Minute) // synctest's clock: the token is due
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := src.calls.Load(); got != 2 {
			t.Fatalf("%d token requests, want the background refresh as the 2nd", got)
		}

		closed := make(chan struct{})
		go func() { c.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while the background refresh was under way")
		default:
		}
		close(gate)
		<-closed

		time.Sleep(55 * time.Minute) // due again
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := src.calls.Load(); got != 2 {
			t.Errorf("%d token requests after Close, want no new background refresh", got)
		}
	})
}
