package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/internal/redistest"
)

func openRedis(t *testing.T, srv *redistest.Server, key []byte) *Redis {
	t.Helper()
	r, err := OpenRedis(context.Background(), RedisOptions{URL: srv.URL(), KeyPrefix: "test:", EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisRecordsSwapOnlyFromTheRedeemedToken(t *testing.T) {
	srv := redistest.Start(t)
	r := openRedis(t, srv, nil)
	ctx := context.Background()
	if rec, err := r.Load(ctx, "redbooth"); rec != nil || err != nil {
		t.Fatalf("empty: %v, %v", rec, err)
	}
	rec1 := auth.Record{Fingerprint: "fp", RefreshToken: "rt-1", AccessToken: "at-1", Updated: time.Unix(1, 0).UTC()}
	// Nothing stored yet: the first rotation is taken whatever it started from.
	if err := r.Swap(ctx, "redbooth", "rt-0", rec1); err != nil {
		t.Fatal(err)
	}
	rec2 := rec1
	rec2.RefreshToken, rec2.AccessToken = "rt-2", "at-2"
	if err := r.Swap(ctx, "redbooth", "rt-0", rec2); !errors.Is(err, auth.ErrRefreshTokenMoved) {
		t.Fatalf("swap from a token that is no longer stored: %v, want ErrRefreshTokenMoved", err)
	}
	if got, _ := r.Load(ctx, "redbooth"); got.RefreshToken != "rt-1" {
		t.Fatalf("a refused swap changed the record to %q", got.RefreshToken)
	}
	if err := r.Swap(ctx, "redbooth", "rt-1", rec2); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Load(ctx, "redbooth"); err != nil || *got != rec2 {
		t.Fatalf("after the swap: %+v, %v", got, err)
	}
	// Another client's record (the config changed) does not block a swap.
	other := rec2
	other.Fingerprint, other.RefreshToken = "fp-new", "rt-new"
	if err := r.Swap(ctx, "redbooth", "seed", other); err != nil {
		t.Fatalf("swap over another client's record: %v", err)
	}
	// Save (a login) replaces whatever is there.
	if err := r.Save(ctx, "redbooth", rec1); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Load(ctx, "redbooth"); got.RefreshToken != "rt-1" {
		t.Fatalf("after save: %q", got.RefreshToken)
	}
}

func TestRedisLockIsOwnedAndExpires(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	a, b := openRedis(t, srv, nil), openRedis(t, srv, nil)
	ctx := context.Background()
	la, err := a.Lock(ctx, "api:fp", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "api:fp", 5*time.Second); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if ttl := c.PTTL(ctx, "test:{api:fp}:lock").Val(); ttl <= 0 || ttl > 5*time.Second {
		t.Fatalf("the lock's TTL is %v; a dead holder's lock must run out", ttl)
	}
	host, _ := os.Hostname()
	if owner := c.Get(ctx, "test:{api:fp}:lock").Val(); !strings.HasPrefix(owner, fmt.Sprintf("%s:%d:", host, os.Getpid())) {
		t.Errorf("lock owner %q does not say which replica holds it", owner)
	}
	// What the TTL running out does: the key goes. Another replica takes over,
	// and the first holder can neither store nor release.
	c.Del(ctx, "test:{api:fp}:lock")
	lb, err := b.Lock(ctx, "api:fp", 5*time.Second)
	if err != nil {
		t.Fatalf("lock after the holder's ran out: %v", err)
	}
	tok := &auth.Token{AccessToken: "at", Expiry: time.Unix(3600, 0), Obtained: time.Unix(0, 0)}
	if _, err := la.Put(ctx, "a", tok); !errors.Is(err, auth.ErrLockLost) {
		t.Fatalf("put by a holder whose lock ran out: %v, want ErrLockLost", err)
	}
	la.Release(ctx)
	if _, err := a.Lock(ctx, "api:fp", time.Second); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("a stale holder's release freed the new holder's lock: %v", err)
	}
	if _, err := lb.Put(ctx, "b", tok); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, "test:{api:fp}:token").Val(); ttl <= time.Hour || ttl > time.Hour+time.Minute {
		t.Errorf("token TTL %v, want its lifetime (1h) plus a minute", ttl)
	}
	got, err := a.LoadToken(ctx, "api:fp")
	if err != nil || got == nil || got.ID != "b" || got.Token.AccessToken != "at" || !got.Token.Expiry.Equal(tok.Expiry) {
		t.Fatalf("load: %+v, %v", got, err)
	}
	lb.Release(ctx)
	if _, err := a.Lock(ctx, "api:fp", time.Second); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
}

// The first 401 for a token of the current epoch starts a new one and
// clears the store; a 401 for a token of an older epoch (another replica
// acted on the same revocation first) changes nothing.
func TestRedisRejectStartsOneEpochPerRevocation(t *testing.T) {
	srv := redistest.Start(t)
	r := openRedis(t, srv, nil)
	ctx := context.Background()
	put := func(id string) int64 {
		l, err := r.Lock(ctx, "k", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		epoch, err := l.Put(ctx, id, &auth.Token{AccessToken: "at-" + id})
		if err != nil {
			t.Fatal(err)
		}
		return epoch
	}
	if e := put("first"); e != 0 {
		t.Fatalf("first token's epoch %d", e)
	}
	if ttl := srv.Client().PTTL(ctx, "test:{k}:token").Val(); ttl != -1 {
		t.Errorf("a token without expiry got TTL %v; it lives until rejected", ttl)
	}
	cur, err := r.Reject(ctx, "k", 0)
	if err != nil || cur != 1 {
		t.Fatalf("first 401: epoch %d, %v; want 1", cur, err)
	}
	if got, _ := r.LoadToken(ctx, "k"); got != nil {
		t.Fatalf("the rejected epoch's token is still stored: %+v", got)
	}
	if e := put("second"); e != 1 {
		t.Fatalf("the replacement's epoch %d, want 1", e)
	}
	// Other replicas report the same revocation: nothing changes.
	for range 3 {
		if cur, _ := r.Reject(ctx, "k", 0); cur != 1 {
			t.Fatalf("a late 401 moved the epoch to %d", cur)
		}
	}
	if cur, _ := r.Reject(ctx, "k", -1); cur != 1 {
		t.Fatalf("a 401 for a token fetched alone moved the epoch to %d", cur)
	}
	if got, _ := r.LoadToken(ctx, "k"); got == nil || got.ID != "second" || got.Epoch != 1 {
		t.Fatalf("a late 401 cleared the replacement: %+v", got)
	}
}

func TestRedisAnnouncesChanges(t *testing.T) {
	srv := redistest.Start(t)
	a, b := openRedis(t, srv, nil), openRedis(t, srv, nil)
	ctx := context.Background()
	l, err := a.Lock(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The subscription is made in the background: until a notification
	// arrives, announce again (a lost one is what waiters poll for).
	changed := b.Changed("k")
	for i := 0; ; i++ {
		if _, err := l.Put(ctx, "x", &auth.Token{AccessToken: "at"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(100 * time.Millisecond):
			if i < 100 {
				continue
			}
			t.Fatal("no notification of a stored token")
		}
		break
	}
	changed = b.Changed("k")
	l.Release(ctx)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of a released lock")
	}
	if other := b.Changed("other"); isClosed(other) {
		t.Error("a change to k woke the waiters of another key")
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestRedisEncryptsAtRest(t *testing.T) {
	srv := redistest.Start(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	r := openRedis(t, srv, key)
	ctx := context.Background()
	rec := auth.Record{Fingerprint: "fp", RefreshToken: "refresh-secret-value", AccessToken: "access-secret-value"}
	if err := r.Save(ctx, "api", rec); err != nil {
		t.Fatal(err)
	}
	l, _ := r.Lock(ctx, "api:fp", time.Minute)
	if _, err := l.Put(ctx, "1", &auth.Token{AccessToken: "shared-access-secret"}); err != nil {
		t.Fatal(err)
	}
	l.Release(ctx)
	dump := srv.Dump()
	for _, s := range []string{"refresh-secret-value", "access-secret-value", "shared-access-secret"} {
		if strings.Contains(dump, s) {
			t.Errorf("%q is stored in the clear:\n%s", s, dump)
		}
	}
	if got, err := r.Load(ctx, "api"); err != nil || *got != rec {
		t.Fatalf("load: %+v, %v", got, err)
	}
	if got, _ := r.LoadToken(ctx, "api:fp"); got == nil || got.Token.AccessToken != "shared-access-secret" {
		t.Fatalf("load token: %+v", got)
	}

	// Another key, or none, cannot read the record and says so; it is never
	// taken for empty, as that would redeem the seed over a live token.
	wrong := openRedis(t, srv, []byte("fedcba9876543210fedcba9876543210"))
	if _, err := wrong.Load(ctx, "api"); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Errorf("another key: %v", err)
	}
	if got, err := wrong.LoadToken(ctx, "api:fp"); got != nil || err != nil {
		t.Errorf("another key's access token: %+v, %v; want none (it is replaced)", got, err)
	}
	plain := openRedis(t, srv, nil)
	if _, err := plain.Load(ctx, "api"); err == nil || !strings.Contains(err.Error(), "set store.encryption_key") {
		t.Errorf("no key: %v", err)
	}
	// A value moved to another key does not open: the key name is bound in.
	c := srv.Client()
	c.HSet(ctx, "test:{other}:refresh", "data", c.HGet(ctx, "test:{api}:refresh", "data").Val())
	if _, err := r.Load(ctx, "other"); err == nil {
		t.Error("a sealed record copied under another name was accepted")
	}
}

func TestRedisUnreachableIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	r := openRedis(t, srv, nil)
	srv.Stop()
	ctx := context.Background()
	if _, err := r.LoadToken(ctx, "k"); err == nil || !strings.Contains(err.Error(), "redis load token") {
		t.Errorf("load token from a stopped server: %v", err)
	}
	if _, err := r.Lock(ctx, "k", time.Second); err == nil || errors.Is(err, auth.ErrLocked) {
		t.Errorf("lock on a stopped server: %v", err)
	}
	srv.Restart()
	waitUntil(t, func() bool { return r.Ping(ctx) == nil })
}

func TestOpenRedisRefusesBadOptions(t *testing.T) {
	_, err := OpenRedis(context.Background(), RedisOptions{URL: "http://user:pa55word@host/"})
	if err == nil || strings.Contains(err.Error(), "pa55word") {
		t.Errorf("bad URL: %v (must not quote the password)", err)
	}
	if _, err := OpenRedis(context.Background(), RedisOptions{URL: "redis://127.0.0.1:1/0", EncryptionKey: []byte("short")}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 1000 {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sentinel and Cluster go through the same client options; the keys of
// one script share a hash tag, so each script touches one Cluster slot.
func TestRedisSentinelAndCluster(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) {
		_, sentinel := redistest.StartSentinel(t)
		url := "redis://" + sentinel.Addr() + "/0?master_name=mymaster"
		exerciseShared(t, "sentinel", url)
	})
	t.Run("cluster", func(t *testing.T) {
		nodes := redistest.StartCluster(t, 3)
		url := "redis://" + nodes[0].Addr() + "?addr=" + nodes[1].Addr() + "&addr=" + nodes[2].Addr()
		exerciseShared(t, "cluster", url)
		// The upstreams' keys landed on more than one node: the cluster
		// was really used, not one node of it.
		used := 0
		for _, n := range nodes {
			if n.Client().DBSize(context.Background()).Val() > 0 {
				used++
			}
		}
		if used < 2 {
			t.Errorf("the keys are on %d node(s) of 3", used)
		}
	})
}

// exerciseShared runs two replicas' worth of store operations in mode.
func exerciseShared(t *testing.T, mode, url string) {
	ctx := context.Background()
	open := func() *Redis {
		r, err := OpenRedis(context.Background(), RedisOptions{Mode: mode, URL: url, EncryptionKey: []byte("0123456789abcdef0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	a, b := open(), open()
	waitUntil(t, func() bool { return a.Ping(ctx) == nil })
	for _, name := range []string{"redgifs", "producthunt", "teenquotes", "generic", "redbooth"} {
		key := name + ":fp"
		l, err := a.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("%s: lock: %v", name, err)
		}
		if _, err := b.Lock(ctx, key, time.Minute); !errors.Is(err, auth.ErrLocked) {
			t.Fatalf("%s: second lock: %v", name, err)
		}
		changed := b.Changed(key)
		// The subscription may still be on its way: announce until heard.
		for i := 0; !isClosed(changed); i++ {
			if _, err := l.Put(ctx, "id-"+name, &auth.Token{AccessToken: "at-" + name}); err != nil {
				t.Fatalf("%s: put: %v", name, err)
			}
			if i > 200 {
				t.Fatalf("%s: no notification", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		l.Release(ctx)
		if got, err := b.LoadToken(ctx, key); err != nil || got == nil || got.Token.AccessToken != "at-"+name {
			t.Fatalf("%s: load: %+v, %v", name, got, err)
		}
		if cur, err := b.Reject(ctx, key, 0); err != nil || cur != 1 {
			t.Fatalf("%s: reject: %d, %v", name, cur, err)
		}
		rec := auth.Record{Fingerprint: "fp", RefreshToken: "rt-1-" + name}
		if err := a.Swap(ctx, name, "seed", rec); err != nil {
			t.Fatalf("%s: swap: %v", name, err)
		}
		if err := b.Swap(ctx, name, "seed", rec); !errors.Is(err, auth.ErrRefreshTokenMoved) {
			t.Fatalf("%s: second swap from the same token: %v", name, err)
		}
		if got, err := b.Load(ctx, name); err != nil || got.RefreshToken != rec.RefreshToken {
			t.Fatalf("%s: load record: %+v, %v", name, got, err)
		}
	}
}
