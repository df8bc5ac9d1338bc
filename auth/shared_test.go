package auth_test

// These tests run several Caches, each with its own grant and its own
// connection to one real redis-server, as several replicas would; the
// integration tests do the same with separate processes.

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/redistest"
	"github.com/authproxy/authproxy/store"
)

const (
	testClientID     = "fleet-client"
	testClientSecret = "fleet-secret-0a1b2c3d"
)

type replica struct {
	cache *auth.Cache
	grant auth.Source

	mu     sync.Mutex
	events []string
}

func (r *replica) sharedEvents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

type fleet struct {
	t        *testing.T
	redis    *redistest.Server
	api      *fakeapi.Server
	apiURL   string
	clock    *fakeclock.Clock
	replicas []*replica
}

// newFleet runs a fake API of flavor f and n replicas' caches sharing one
// Redis. Refresh-token flavors get a RefreshGrant seeded with one refresh
// token, as every replica's config would be.
func newFleet(t *testing.T, f fakeapi.Flavor, n int) *fleet {
	t.Helper()
	fl := &fleet{t: t, redis: redistest.Start(t), clock: fakeclock.New(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))}
	fl.api = fakeapi.New(f, testClientID, testClientSecret, fl.clock.Now)
	srv := httptest.NewServer(fl.api)
	t.Cleanup(srv.Close)
	fl.apiURL = srv.URL
	seed := ""
	if f.ThreeLegged {
		seed = fl.api.SeedRefreshToken()
	}
	for range n {
		st, err := store.OpenRedis(context.Background(), store.RedisOptions{URL: fl.redis.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		client := auth.Client{TokenURL: srv.URL + f.TokenPath, ClientID: testClientID, ClientSecret: testClientSecret,
			BodyFormat: auth.FormBody, Now: fl.clock.Now}
		if f.JSONRequest {
			client.BodyFormat = auth.JSONBody
		}
		r := &replica{}
		var grant auth.Source = &auth.ClientCredentials{Client: client}
		if f.ThreeLegged {
			g := &auth.RefreshGrant{Client: client, Name: f.Name, InitialRefreshToken: seed, Store: st, Shared: true}
			if _, err := g.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			grant = g
		}
		r.grant = grant
		r.cache = auth.NewCache(grant, auth.CacheOptions{
			RefreshBefore: 10 * time.Minute, Now: fl.clock.Now, Jitter: func(time.Duration) time.Duration { return 0 },
			Shared: st, SharedKey: f.Name + ":" + client.Fingerprint(),
			LocalFallback: !f.ThreeLegged, LockTTL: 5 * time.Second, FetchTimeout: 2 * time.Second,
			OnShared: func(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() },
		})
		fl.replicas = append(fl.replicas, r)
	}
	return fl
}

// all asks every replica for a token, perCache callers at once each, and
// returns the tokens they got.
func (fl *fleet) all(perCache int) []*auth.Token {
	fl.t.Helper()
	var mu sync.Mutex
	var out []*auth.Token
	var wg sync.WaitGroup
	for _, r := range fl.replicas {
		for range perCache {
			wg.Go(func() {
				tok, err := r.cache.Token(context.Background())
				if err != nil {
					fl.t.Errorf("token: %v", err)
					return
				}
				mu.Lock()
				out = append(out, tok)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return out
}

func sameToken(t *testing.T, toks []*auth.Token) string {
	t.Helper()
	if len(toks) == 0 {
		t.Fatal("no tokens")
	}
	for _, tok := range toks {
		if tok.AccessToken != toks[0].AccessToken {
			t.Fatal("replicas hold different tokens")
		}
	}
	return toks[0].AccessToken
}

func TestSharedCacheFetchesOnceForTheFleet(t *testing.T) {
	fl := newFleet(t, fakeapi.RedGIFs(), 3)
	first := sameToken(t, fl.all(50))
	if n := fl.api.TokenRequests(); n != 1 {
		t.Fatalf("3 replicas x 50 cold callers made %d token requests, want 1", n)
	}
	var fetched, adopted int
	for _, r := range fl.replicas {
		for _, e := range r.sharedEvents() {
			switch e {
			case "fetched":
				fetched++
			case "adopted":
				adopted++
			}
		}
	}
	if fetched != 1 || adopted != 2 {
		t.Errorf("fetched %d, adopted %d; want 1 and 2", fetched, adopted)
	}

	// A 401 seen by every replica: one refresh, and all move to it.
	fl.api.RevokeAll()
	for _, r := range fl.replicas {
		r.cache.Invalidate(r.cache.Cached())
	}
	second := sameToken(t, fl.all(50))
	if second == first {
		t.Fatal("the rejected token is still in use")
	}
	if n := fl.api.TokenRequests(); n != 2 {
		t.Fatalf("a revocation seen by 3 replicas made %d token requests, want 1 more", n-1)
	}

	// Expiry: the first replica due refreshes, the others take its token.
	fl.clock.Advance(24*time.Hour - 9*time.Minute)
	fl.replicas[0].cache.Token(context.Background()) // starts the background refresh
	waitFor(t, func() bool { return fl.api.TokenRequests() == 3 })
	waitFor(t, func() bool { return fl.replicas[0].cache.Cached().AccessToken != second })
	for _, r := range fl.replicas[1:] {
		r.cache.Token(context.Background())
	}
	third := fl.replicas[0].cache.Cached().AccessToken
	waitFor(t, func() bool {
		return fl.replicas[1].cache.Cached().AccessToken == third && fl.replicas[2].cache.Cached().AccessToken == third
	})
	if n := fl.api.TokenRequests(); n != 3 {
		t.Errorf("the refresh ahead of expiry made %d token requests, want 1", n-2)
	}
}

// A revocation kills every token, also one another replica fetched just
// before it: the first replica to see the 401 must not take that one, or
// its replay fails too. The rest then take the one fetched after.
func TestSharedCacheSkipsATokenFetchedBeforeARevocation(t *testing.T) {
	fl := newFleet(t, fakeapi.RedGIFs(), 3)
	t1 := sameToken(t, fl.all(1))
	a, b, c := fl.replicas[0], fl.replicas[1], fl.replicas[2]
	// a refreshes ahead of expiry; b and c still hold t1.
	fl.clock.Advance(24*time.Hour - 9*time.Minute)
	a.cache.Token(context.Background())
	waitFor(t, func() bool { return a.cache.Cached().AccessToken != t1 })
	t2 := a.cache.Cached().AccessToken

	fl.api.RevokeAll() // t1 and t2
	b.cache.Invalidate(b.cache.Cached())
	tb, err := b.cache.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tb.AccessToken == t2 {
		t.Fatal("after a 401 the replica took a token fetched before the revocation")
	}
	for _, r := range []*replica{a, c} {
		r.cache.Invalidate(r.cache.Cached())
		if got, _ := r.cache.Token(context.Background()); got == nil || got.AccessToken != tb.AccessToken {
			t.Error("a replica that saw the same revocation did not take the replacement")
		}
	}
	if n := fl.api.TokenRequests(); n != 3 {
		t.Errorf("%d token requests, want 3 (t1, a's refresh, one for the revocation)", n)
	}
}

// A token with no expiry (Product Hunt) is shared until rejected.
func TestSharedCacheKeepsTokensWithoutExpiry(t *testing.T) {
	fl := newFleet(t, fakeapi.ProductHunt(), 2)
	tok := sameToken(t, fl.all(5))
	fl.clock.Advance(1000 * time.Hour)
	if got := sameToken(t, fl.all(5)); got != tok || fl.api.TokenRequests() != 1 {
		t.Errorf("token changed or refetched (%d requests)", fl.api.TokenRequests())
	}
	if ttl := fl.redis.Client().PTTL(context.Background(), "authproxy:{producthunt:"+
		auth.Client{TokenURL: fl.apiURL + fakeapi.ProductHunt().TokenPath, ClientID: testClientID}.Fingerprint()+"}:token").Val(); ttl != -1 {
		t.Errorf("a token without expiry has TTL %v in Redis", ttl)
	}
}

// The other replicas wait for the lock's holder rather than fetch; if it
// dies the lock runs out and one of them fetches.
func TestSharedCacheTakesOverFromADeadHolder(t *testing.T) {
	fl := newFleet(t, fakeapi.RedGIFs(), 2)
	st, _ := store.OpenRedis(context.Background(), store.RedisOptions{URL: fl.redis.URL()})
	defer st.Close()
	key := "redgifs:" + auth.Client{TokenURL: fl.apiURL + fakeapi.RedGIFs().TokenPath, ClientID: testClientID}.Fingerprint()
	// A replica that took the lock and died: it never stores or releases.
	if _, err := st.Lock(context.Background(), key, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	sameToken(t, fl.all(5))
	if n := fl.api.TokenRequests(); n != 1 {
		t.Errorf("%d token requests after the holder's death, want 1", n)
	}
}

func TestSharedCacheFallsBackWhileRedisIsDown(t *testing.T) {
	fl := newFleet(t, fakeapi.RedGIFs(), 2)
	sameToken(t, fl.all(5))
	fl.redis.Stop()
	fl.api.RevokeAll()
	for _, r := range fl.replicas {
		r.cache.Invalidate(r.cache.Cached())
	}
	toks := fl.all(5)
	if len(toks) != 10 {
		t.Fatalf("%d of 10 callers got a token with Redis down", len(toks))
	}
	if n := fl.api.TokenRequests(); n != 3 {
		t.Errorf("with Redis down, %d token requests; want 1 per replica (2)", n-1)
	}
	for i, r := range fl.replicas {
		if st := r.cache.Status(); st.SharedError == nil || !st.Valid {
			t.Errorf("replica %d status %+v: want a valid token and the store's error", i, st)
		}
		if ev := r.sharedEvents(); ev[len(ev)-1] != "fallback" {
			t.Errorf("replica %d events %v", i, ev)
		}
	}

	// Back to shared mode once Redis answers.
	fl.redis.Restart()
	fl.api.RevokeAll()
	for _, r := range fl.replicas {
		r.cache.Invalidate(r.cache.Cached())
	}
	for {
		// The first fetch after the restart may still find the old
		// connection broken, and fall back once more.
		sameOrNot := fl.all(1)
		if sameOrNot[0].AccessToken == sameOrNot[1].AccessToken {
			break
		}
		for _, r := range fl.replicas {
			r.cache.Invalidate(r.cache.Cached())
		}
		fl.clock.Advance(time.Minute) // past any backoff
	}
	for i, r := range fl.replicas {
		if st := r.cache.Status(); st.SharedError != nil {
			t.Errorf("replica %d still reports %v", i, st.SharedError)
		}
	}
}

func TestSharedRefreshGrantFailsClosedWithoutRedis(t *testing.T) {
	fl := newFleet(t, fakeapi.Redbooth(), 2)
	sameToken(t, fl.all(3))
	fl.redis.Stop()
	fl.api.RevokeAll()
	r := fl.replicas[0]
	r.cache.Invalidate(r.cache.Cached())
	_, err := r.cache.Token(context.Background())
	if !errors.Is(err, auth.ErrSharedStoreUnavailable) {
		t.Fatalf("err %v, want ErrSharedStoreUnavailable", err)
	}
	redeemed := 0
	for _, n := range fl.api.Redemptions() {
		redeemed += n
	}
	if redeemed != 1 {
		t.Errorf("%d redemptions; with Redis down none may be made", redeemed-1)
	}
	var be *auth.BackoffError
	if !errors.As(err, &be) || be.Wait > 2*time.Second {
		t.Errorf("backoff %+v: a store outage must not hold the upstream back long once it ends", be)
	}
}

// Refresh tokens rotate on every use: across 20 rotations spread over the
// replicas, each is redeemed exactly once.
func TestSharedRefreshGrantRedeemsEachRefreshTokenOnce(t *testing.T) {
	f := fakeapi.Redbooth()
	fl := newFleet(t, f, 3)
	fl.api.SetRevokeOnUse(false) // strict: a second redemption fails
	prev := sameToken(t, fl.all(10))
	for i := range 20 {
		if i%2 == 0 {
			fl.api.RevokeAll() // a 401 everywhere
			for _, r := range fl.replicas {
				r.cache.Invalidate(r.cache.Cached())
			}
		} else {
			fl.clock.Advance(f.ExpiresIn) // expired everywhere
		}
		tok := sameToken(t, fl.all(10))
		if tok == prev {
			t.Fatalf("rotation %d: no new token", i)
		}
		prev = tok
	}
	for rt, n := range fl.api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
	if n := len(fl.api.Redemptions()); n != 21 {
		t.Errorf("%d redemptions, want 21", n)
	}
}

// Redis going away between a redemption and its save: the rotation is
// kept in memory and saved before anything else is redeemed.
func TestSharedRefreshGrantKeepsAnUnsavedRotation(t *testing.T) {
	fl := newFleet(t, fakeapi.Redbooth(), 1)
	fl.api.SetRevokeOnUse(false)
	r := fl.replicas[0]
	first := sameToken(t, fl.all(1))
	fl.api.OnRefresh(func(string) { fl.redis.Stop() })
	fl.api.RevokeAll()
	r.cache.Invalidate(r.cache.Cached())
	if _, err := r.cache.Token(context.Background()); !errors.Is(err, auth.ErrSharedStoreUnavailable) {
		t.Fatalf("err %v", err)
	}
	fl.api.OnRefresh(nil)
	fl.redis.Restart()
	fl.clock.Advance(time.Minute) // past the backoff
	var tok *auth.Token
	waitFor(t, func() bool {
		var err error
		tok, err = r.cache.Token(context.Background())
		fl.clock.Advance(2 * time.Second)
		return err == nil
	})
	if tok.AccessToken == first {
		t.Fatal("the revoked token came back")
	}
	for rt, n := range fl.api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
	// The store has the rotation's refresh token: the next one works.
	fl.api.RevokeAll()
	r.cache.Invalidate(tok)
	if _, err := r.cache.Token(context.Background()); err != nil {
		t.Fatalf("after the saved rotation: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// If a replica's lock ran out mid-redemption and another redeemed the
// same refresh token meanwhile, the compare-and-set keeps the other's
// rotation and refuses the late one, whose access token is not used.
func TestSharedRefreshGrantRefusesARotationThatLostTheRace(t *testing.T) {
	fl := newFleet(t, fakeapi.Redbooth(), 2)
	fl.api.SetRevokeOnUse(true) // the old token works until the new one is used
	a := fl.replicas[0].grant.(*auth.RefreshGrant)
	b := fl.replicas[1].grant.(*auth.RefreshGrant)
	var bTok *auth.Token
	var first atomic.Bool
	fl.api.OnRefresh(func(string) {
		if first.CompareAndSwap(false, true) { // while a's redemption is at the endpoint, b redeems the same token
			var err error
			if bTok, err = b.Token(context.Background()); err != nil {
				t.Errorf("b: %v", err)
			}
		}
	})
	_, err := a.Token(context.Background())
	if !errors.Is(err, auth.ErrRefreshTokenMoved) {
		t.Fatalf("a's late rotation: %v, want ErrRefreshTokenMoved", err)
	}
	st, _ := store.OpenRedis(context.Background(), store.RedisOptions{URL: fl.redis.URL()})
	defer st.Close()
	rec, err := st.Load(context.Background(), "redbooth")
	if err != nil || rec == nil || bTok == nil || rec.RefreshToken != bTok.RefreshToken {
		t.Fatalf("the store lost b's rotation: %+v, %v", rec, err)
	}
}
