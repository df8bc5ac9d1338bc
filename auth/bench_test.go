package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCacheTokenValid is the hot path every request takes: a cached,
// valid token. It must not allocate or lock.
func BenchmarkCacheTokenValid(b *testing.B) {
	src := &fakeSource{fn: func(context.Context, int32) (*Token, error) {
		return &Token{AccessToken: "t", Expiry: time.Now().Add(time.Hour)}, nil
	}}
	c := NewCache(src, CacheOptions{RefreshBefore: time.Minute})
	ctx := context.Background()
	c.Token(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := testing.AllocsPerRun(100, func() { c.Token(ctx) }); n != 0 {
		b.Errorf("%v allocations per cached Token call, want 0", n)
	}
}
