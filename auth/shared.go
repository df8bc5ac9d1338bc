package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// Shared is a token store that several replicas of the proxy use at once
// (store.Redis), so that the fleet holds one access token per upstream
// and fetches it once between them. Keys name one upstream's client.
type Shared interface {
	// LoadToken returns the token stored under key, or nil.
	LoadToken(ctx context.Context, key string) (*SharedToken, error)
	// Lock takes key's fetch lock for ttl, unless another replica holds
	// it: then it returns ErrLocked. A holder that dies loses the lock
	// when ttl runs out.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// Changed returns a channel that is closed at the next change of key's
	// token or lock. It may also never be closed (a notification lost in a
	// reconnect): callers poll as well.
	Changed(key string) <-chan struct{}
	// ClearToken deletes key's token if its ID is still id: a 401 for one
	// token must not throw away a newer one another replica stored.
	ClearToken(ctx context.Context, key, id string) error
}

// Lock is a fetch lock held by this replica.
type Lock interface {
	// Put stores t as the lock's key's token, if the lock is still held,
	// and wakes the replicas waiting for it. It returns ErrLockLost if the
	// lock ran out and another replica may have taken it.
	Put(ctx context.Context, t SharedToken) error
	// Release frees the lock if this replica still holds it, and wakes the
	// replicas waiting for it.
	Release(ctx context.Context) error
}

// SharedToken is a token as the fleet shares it: the access token only,
// never the refresh token, which has a Store record of its own.
type SharedToken struct {
	// ID names this token in the store, so that a replica can say which
	// token a 401 was for without comparing secrets. It is random.
	ID    string
	Token *Token
}

var (
	// ErrLocked is Shared.Lock's answer when another replica holds the lock.
	ErrLocked = errors.New("another replica holds the fetch lock")
	// ErrLockLost is Lock.Put's answer when the lock ran out first.
	ErrLockLost = errors.New("the fetch lock ran out before the token was stored")
	// ErrSharedStoreUnavailable means the shared store could not be reached
	// and the cache would not fetch without it: a refresh-token upstream,
	// where two replicas redeeming the same refresh token would lock the
	// account out. Test with errors.Is.
	ErrSharedStoreUnavailable = errors.New("the shared token store is unreachable")
)

// sharedPoll is how often a replica waiting for another's fetch looks at
// the store even without a notification, and tries the lock again: a
// holder that died sends none.
const sharedPoll = 100 * time.Millisecond

// fetchShared gets a token through the shared store: another replica's if
// it is usable, else one fetched under the fleet-wide lock while the other
// replicas wait for it. prevID is the shared ID of the token being
// replaced ("" if none): never usable, since it is the one that is due,
// expired or was rejected.
func (c *Cache) fetchShared(ctx context.Context, reason, prevID string) (tok *Token, id string, err error) {
	sh, key := c.opts.Shared, c.opts.SharedKey
	// The wait for a dead holder's lock to run out, then a fetch of our own.
	ctx, cancel := context.WithTimeout(ctx, c.opts.LockTTL+c.opts.FetchTimeout)
	defer cancel()
	poll := time.NewTimer(sharedPoll)
	defer poll.Stop()
	for {
		changed := sh.Changed(key) // before looking, so no change is missed
		st, err := sh.LoadToken(ctx, key)
		if err != nil {
			return c.sharedFailed(ctx, reason, err)
		}
		if c.usable(st, prevID) {
			c.sharedOK("adopted")
			return st.Token, st.ID, nil
		}
		if reason == "rejected" && st != nil && st.ID == prevID {
			// The 401'd token leaves the store, unless another replica has
			// already replaced it, so replicas starting now do not use it.
			if err := sh.ClearToken(ctx, key, prevID); err != nil {
				return c.sharedFailed(ctx, reason, err)
			}
		}
		lock, err := sh.Lock(ctx, key, c.opts.LockTTL)
		switch {
		case err == nil:
			return c.fetchLocked(ctx, reason, prevID, lock)
		case !errors.Is(err, ErrLocked):
			return c.sharedFailed(ctx, reason, err)
		}
		// Another replica is fetching: wait for its token, or for its lock
		// to be released or to run out.
		poll.Reset(sharedPoll)
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			return nil, "", fmt.Errorf("waiting for another replica's token request: %w", ctx.Err())
		}
	}
}

// fetchLocked asks the token endpoint while holding the fleet's lock and
// shares the answer.
func (c *Cache) fetchLocked(ctx context.Context, reason, prevID string, lock Lock) (*Token, string, error) {
	sh, key := c.opts.Shared, c.opts.SharedKey
	defer lock.Release(context.WithoutCancel(ctx))
	// Another replica may have stored a token between our look and our lock.
	st, err := sh.LoadToken(ctx, key)
	if err != nil {
		return c.sharedFailed(ctx, reason, err)
	}
	if c.usable(st, prevID) {
		c.sharedOK("adopted")
		return st.Token, st.ID, nil
	}
	tok, err := c.request(ctx, reason)
	if err != nil {
		return nil, "", err
	}
	shared := *tok
	shared.RefreshToken = "" // a refresh grant keeps it in its own record
	id := newTokenID()
	if err := lock.Put(ctx, SharedToken{ID: id, Token: &shared}); err != nil {
		// The token is good; only the other replicas will not see it and
		// will fetch their own.
		c.opts.Log.WithError(err).Warn("could not share the new token with the other replicas")
		return tok, "", nil
	}
	c.sharedOK("fetched")
	return tok, id, nil
}

// usable reports whether the stored token can be taken as it is: valid,
// not the one being replaced, and not yet due for refresh (a replica
// must not take a token it would refresh at once).
func (c *Cache) usable(st *SharedToken, prevID string) bool {
	if st == nil || st.Token == nil || st.ID == prevID {
		return false
	}
	now := c.opts.Now()
	if !st.Token.ValidAt(now) {
		return false
	}
	due := c.refreshAt(st.Token, now, false)
	return due.IsZero() || now.Before(due)
}

// sharedFailed handles an error of the shared store: a client-credentials
// cache fetches on its own (any replica may hold its own token); a
// refresh-token cache fails closed.
func (c *Cache) sharedFailed(ctx context.Context, reason string, err error) (*Token, string, error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil, "", fmt.Errorf("shared token store: %w", err)
	}
	c.mu.Lock()
	first := c.sharedErr == nil
	c.sharedErr = err
	c.mu.Unlock()
	log := c.opts.Log.WithError(err)
	if !c.opts.LocalFallback {
		if first {
			log.Error("the shared token store is unreachable; no refresh token is redeemed without the fleet's lock, so requests fail until it is back")
		}
		c.event("unavailable")
		return nil, "", fmt.Errorf("%w: %w", ErrSharedStoreUnavailable, err)
	}
	if first {
		log.Warn("the shared token store is unreachable; this replica fetches its own tokens until it is back")
	}
	c.event("fallback")
	tok, err := c.request(context.WithoutCancel(ctx), reason)
	return tok, "", err
}

// sharedOK records that the shared store answered, and says so if it had
// not before.
func (c *Cache) sharedOK(event string) {
	c.mu.Lock()
	was := c.sharedErr
	c.sharedErr = nil
	c.mu.Unlock()
	if was != nil {
		c.opts.Log.Info("the shared token store is reachable again; sharing tokens with the other replicas")
	}
	c.event(event)
}

func (c *Cache) event(e string) {
	if c.opts.OnShared != nil {
		c.opts.OnShared(e)
	}
}

// newTokenID names a shared token: random, so it tells nothing of the
// token.
func newTokenID() string { return rand.Text() }
