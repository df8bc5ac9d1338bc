package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Shared is a token store that several replicas of the proxy use at once
// (store.Redis), so that the fleet holds one access token per upstream
// and fetches it once between them. Keys name one upstream's client.
type Shared interface {
	// LoadToken returns the token stored under key, or nil.
	LoadToken(ctx context.Context, key string) (*SharedToken, error)
	// Lock takes key's fetch lock for ttl, unless another replica holds
	// it: then it returns ErrLocked. A holder that dies loses the lock
	// when ttl runs out. The token the holder stores is of the epoch
	// current when it took the lock.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// Changed returns a channel that is closed at the next change of key's
	// token or lock. It may also never be closed (a notification lost in a
	// reconnect): callers poll as well.
	Changed(key string) <-chan struct{}
	// Reject records that a token of the given epoch was refused
	// upstream, and returns the epoch a token must be of to be used in
	// its place. If no refusal was recorded since that epoch began (the
	// first replica to see this 401), it starts a new epoch and clears the
	// stored token, which was fetched before the refusal and may be dead
	// too; otherwise (another replica saw it first) it changes nothing.
	// An epoch of -1 (a token fetched alone) starts none.
	Reject(ctx context.Context, key string, epoch int64) (int64, error)
}

// Lock is a fetch lock held by this replica.
type Lock interface {
	// Put stores tok under id as the lock's key's token, if the lock is
	// still held, and wakes the replicas waiting for it. It returns the
	// token's epoch, or ErrLockLost if the lock ran out and another
	// replica may have taken it.
	Put(ctx context.Context, id string, tok *Token) (epoch int64, err error)
	// Release frees the lock if this replica still holds it, and wakes the
	// replicas waiting for it.
	Release(ctx context.Context) error
}

// SharedToken is a token as the fleet shares it: the access token only,
// never the refresh token, which has a Store record of its own.
type SharedToken struct {
	// ID names this token in the store, so that a replica can tell it from
	// the one it holds without comparing secrets. It is random.
	ID string
	// Epoch counts the 401s the fleet has acted on before this token was
	// requested: a token of an older epoch than a 401 may have died with
	// the token that got it (a revocation kills every token).
	Epoch int64
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
// replicas wait for it. prev is the entry being replaced (due, expired or
// rejected; nil if none): its token is never taken back.
func (c *Cache) fetchShared(ctx context.Context, reason string, prev *cachedToken) (tok *Token, st *SharedToken, err error) {
	sh, key := c.opts.Shared, c.opts.SharedKey
	// The wait for a dead holder's lock to run out, then a fetch of our own.
	ctx, cancel := context.WithTimeout(ctx, c.opts.LockTTL+c.opts.FetchTimeout)
	defer cancel()
	want := wanted{}
	if prev != nil {
		want.notID = prev.id
	}
	if reason == "rejected" && prev != nil {
		// The first replica to see a 401 for this token starts an epoch
		// and clears the store; every replica then waits for a token of
		// that epoch, which exactly one of them fetches.
		epoch := prev.epoch
		if prev.id == "" {
			epoch = -1
		}
		if want.epoch, err = sh.Reject(ctx, key, epoch); err != nil {
			return c.sharedFailed(ctx, reason, err)
		}
		c.opts.Log.WithFields(logrus.Fields{"token_epoch": epoch, "epoch": want.epoch}).Debug("401 reported to the shared store")
	}
	poll := time.NewTimer(sharedPoll)
	defer poll.Stop()
	for {
		changed := sh.Changed(key) // before looking, so no change is missed
		if st, err := c.lookShared(ctx, reason, want); err != nil {
			return c.sharedFailed(ctx, reason, err)
		} else if st != nil {
			return st.Token, st, nil
		}
		lock, err := sh.Lock(ctx, key, c.opts.LockTTL)
		switch {
		case err == nil:
			return c.fetchLocked(ctx, reason, want, lock)
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
			return nil, nil, fmt.Errorf("waiting for another replica's token request: %w", ctx.Err())
		}
	}
}

// wanted is what a stored token must be to be used.
type wanted struct {
	notID string // the token being replaced
	epoch int64  // at least this epoch
}

// fetchLocked asks the token endpoint while holding the fleet's lock and
// shares the answer.
func (c *Cache) fetchLocked(ctx context.Context, reason string, want wanted, lock Lock) (*Token, *SharedToken, error) {
	defer lock.Release(context.WithoutCancel(ctx))
	// Another replica may have stored a token between our look and our lock.
	if st, err := c.lookShared(ctx, reason, want); err != nil {
		return c.sharedFailed(ctx, reason, err)
	} else if st != nil {
		return st.Token, st, nil
	}
	tok, err := c.request(ctx, reason)
	if err != nil {
		return nil, nil, err
	}
	shared := *tok
	shared.RefreshToken = "" // a refresh grant keeps it in its own record
	st := &SharedToken{ID: newTokenID(), Token: &shared}
	if st.Epoch, err = lock.Put(ctx, st.ID, st.Token); err != nil {
		// The token is good; only the other replicas will not see it and
		// will fetch their own.
		c.opts.Log.WithError(err).Warn("could not share the new token with the other replicas")
		return tok, nil, nil
	}
	c.sharedOK("fetched")
	return tok, st, nil
}

// lookShared returns the stored token if it is usable, taking it as this
// replica's; nil if there is none to take.
func (c *Cache) lookShared(ctx context.Context, reason string, want wanted) (*SharedToken, error) {
	st, err := c.opts.Shared.LoadToken(ctx, c.opts.SharedKey)
	if err != nil || !c.usable(st, want) {
		return nil, err
	}
	c.opts.Log.WithFields(logrus.Fields{"reason": reason, "epoch": st.Epoch}).Debug("token taken from the shared store")
	c.sharedOK("adopted")
	return st, nil
}

// usable reports whether the stored token can be taken as it is: valid,
// not the one being replaced, of the wanted epoch, and not yet due for
// refresh (a replica must not take a token it would refresh at once).
func (c *Cache) usable(st *SharedToken, want wanted) bool {
	if st == nil || st.Token == nil || st.ID == want.notID || st.Epoch < want.epoch {
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
func (c *Cache) sharedFailed(ctx context.Context, reason string, err error) (*Token, *SharedToken, error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil, nil, fmt.Errorf("shared token store: %w", err)
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
		return nil, nil, fmt.Errorf("%w: %w", ErrSharedStoreUnavailable, err)
	}
	if first {
		log.Warn("the shared token store is unreachable; this replica fetches its own tokens until it is back")
	}
	c.event("fallback")
	tok, err := c.request(context.WithoutCancel(ctx), reason)
	return tok, nil, err
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
