package proxy

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// maxRejectedPaths bounds how many paths rejectedPaths remembers for one
// token. Past it the token is taken to be fine everywhere it is refused:
// a client that makes up a new path for each request gets no more token
// requests for it.
const maxRejectedPaths = 32

// exhaustedRetry is how often a token past maxRejectedPaths is still
// refreshed after a 401 on a path it has not been refused on, so that a
// revocation meanwhile is recovered from, if late. (A token without an
// expiry would otherwise never be replaced.)
const exhaustedRetry = time.Minute

// rejectedPaths remembers where a token generation was refused although
// it had just been fetched: there a 401 says nothing about the token (the
// path is forbidden to this client, or broken), and refreshing again
// would only hammer the token endpoint. A 401 on any other path still
// refreshes at once, so a real revocation is recovered from on the first
// request that meets it.
//
// The paths belong to the newest token whose replay was refused. They are
// carried over to the next one when the refresh that fetched it was
// itself for nothing (its replay was refused too), so that a client
// cycling through new paths does not restart the count with each token;
// they are forgotten when a refresh helps, or the token changes otherwise
// (it expired).
type rejectedPaths struct {
	mu        sync.Mutex
	seed      maphash.Seed
	tok       *auth.Token
	paths     map[uint64]struct{} // hashes of "METHOD path": bounded memory whatever the paths
	nextRetry time.Time           // past the bound: the next refresh allowed
	// trials are the refreshes and replays in flight, by key: requests
	// that met the fresh token on that key meanwhile learn from their own
	// rejection what the replay is about to teach, instead of refreshing
	// again.
	trials map[uint64]*trial
	onWait func() // a test's: a rejection waits for a trial's token
}

// trial is a refresh for key after stale was refused there, then the
// replay with the token it fetched. It is recorded before the refresh
// begins: the fresh token is in the cache, for every request to take,
// before the request that caused its fetch has it back.
type trial struct {
	stale, fresh *auth.Token // fresh: known once ready is closed; nil if the fetch failed
	ready        chan struct{}
	settled      bool // ready is closed
}

func (r *rejectedPaths) hash(key string) uint64 {
	if r.seed == (maphash.Seed{}) { // made on first use, by whichever method
		r.seed = maphash.MakeSeed()
	}
	return maphash.String(r.seed, key)
}

// skip reports whether a rejection of tok for key should go back to the
// client as it is, with no refresh; bound as for refused. While a refresh
// for key after another token's rejection is fetching, it waits for that
// token: tok may be it.
func (r *rejectedPaths) skip(ctx context.Context, tok *auth.Token, key string, now time.Time) (skip, bound bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hash(key)
	if tr, ok := r.trials[h]; ok && !tr.settled && tr.stale != tok {
		r.mu.Unlock()
		if r.onWait != nil {
			r.onWait()
		}
		select {
		case <-tr.ready:
		case <-ctx.Done():
		}
		r.mu.Lock()
	}
	if tr, ok := r.trials[h]; ok && tr.settled && tr.fresh == tok {
		// The token just fetched for this key's rejection is refused here
		// too: what the replay in flight will find.
		return true, r.refusedLocked(tr.stale, tr.fresh, h, now)
	}
	if r.tok != tok || r.paths == nil {
		return false, false
	}
	if _, ok := r.paths[h]; ok {
		return true, false
	}
	if len(r.paths) < maxRejectedPaths {
		return false, false
	}
	if now.Before(r.nextRetry) {
		return true, false
	}
	r.nextRetry = now.Add(exhaustedRetry)
	return false, false
}

// refused records that fresh, fetched after stale was refused for key,
// was refused for key too. It reports whether that made fresh reach the
// bound, which is worth saying once.
func (r *rejectedPaths) refused(stale, fresh *auth.Token, key string, now time.Time) (bound bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hash(key)
	r.endTrial(h, fresh)
	return r.refusedLocked(stale, fresh, h, now)
}

func (r *rejectedPaths) refusedLocked(stale, fresh *auth.Token, h uint64, now time.Time) (bound bool) {
	if r.paths == nil || r.tok != fresh && r.tok != stale {
		r.paths = map[uint64]struct{}{}
	}
	if r.tok != fresh {
		r.tok = fresh
		if len(r.paths) >= maxRejectedPaths {
			r.nextRetry = now.Add(exhaustedRetry)
		}
	}
	if len(r.paths) >= maxRejectedPaths {
		return false
	}
	r.paths[h] = struct{}{}
	if len(r.paths) == maxRejectedPaths {
		r.nextRetry = now.Add(exhaustedRetry)
		return true
	}
	return false
}

// refreshing records that stale was refused for key and is about to be
// refreshed; the requests refused with stale there meanwhile join the
// same trial.
func (r *rejectedPaths) refreshing(stale *auth.Token, key string) *trial {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hash(key)
	if tr, ok := r.trials[h]; ok && tr.stale == stale {
		return tr
	}
	if r.trials == nil {
		r.trials = map[uint64]*trial{}
	}
	tr := &trial{stale: stale, ready: make(chan struct{})}
	r.trials[h] = tr
	return tr
}

// fetched records the token the refresh of tr fetched (nil: it failed,
// and the trial ends); the first to say so for a trial counts.
func (r *rejectedPaths) fetched(tr *trial, fresh *auth.Token, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !tr.settled {
		tr.fresh, tr.settled = fresh, true
		close(tr.ready)
	}
	if fresh == nil {
		if h := r.hash(key); r.trials[h] == tr {
			delete(r.trials, h)
		}
	}
}

// failed ends a replay that came to nothing (a network error).
func (r *rejectedPaths) failed(fresh *auth.Token, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endTrial(r.hash(key), fresh)
}

// accepted records that fresh, fetched after a refusal, was accepted for
// key: that refresh was needed, and what was learnt of older tokens is
// void.
func (r *rejectedPaths) accepted(fresh *auth.Token, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hash(key)
	r.endTrial(h, fresh)
	if r.tok != fresh {
		r.tok, r.paths = nil, nil
	} else {
		delete(r.paths, h)
	}
}

func (r *rejectedPaths) endTrial(h uint64, fresh *auth.Token) {
	if tr, ok := r.trials[h]; ok && tr.settled && tr.fresh == fresh {
		delete(r.trials, h)
	}
}
