package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// ErrReauthorizationRequired means the refresh token is dead (the
// endpoint answered invalid_grant) and only a person logging in again can
// get a new one. The grant does not ask the endpoint again until then.
var ErrReauthorizationRequired = errors.New("reauthorization required")

// RefreshGrant fetches access tokens with the RFC 6749 6 refresh-token
// grant, for APIs that rotate the refresh token on every use (Redbooth).
//
// It redeems each refresh token at most once: refreshes are serialized,
// in this process and, through the Store's lock (see Updater), with every
// other process refreshing from the same Store; each takes up the newest
// refresh token found there, and saves the new one before the access
// token is handed out, so a crash never loses the only valid refresh
// token once it could have been used.
type RefreshGrant struct {
	// Client says how to reach the token endpoint. ClientSecret may be
	// empty for a public client.
	Client
	// Name is the upstream's name: the key in the Store.
	Name string
	// InitialRefreshToken seeds a Store that has no record yet; a stored
	// refresh token always wins over it.
	InitialRefreshToken string
	// Store keeps the tokens. Required.
	Store Store
	// Log receives the one error that says a login is needed; nil discards.
	Log logrus.FieldLogger
	// Shared says that other replicas redeem from the same Store, which
	// must then be a Swapper. The grant reads the newest refresh token
	// from the Store before each redemption (the Cache makes it under the
	// fleet's lock) and saves the new one with Swap. Open then returns no
	// token: the Cache takes the fleet's shared access token instead.
	Shared bool

	mu      sync.Mutex // serializes refreshes and guards the fields below
	refresh string     // the newest refresh token
	dead    string     // the refresh token the endpoint rejected, if any
	// stored is the refresh token the Store held when this grant last read
	// or wrote it: one found there that differs is another process's
	// rotation, or a login's.
	stored string
	// unsaved is a rotation the shared Store did not take (it was
	// unreachable); it is saved before anything else is redeemed.
	unsaved *unsavedRotation
}

type unsavedRotation struct {
	old string
	rec Record
}

var _ Source = (*RefreshGrant)(nil)

// Open loads the stored record. It returns the stored access token if it
// is still usable, so that a restart costs no token request, or nil.
func (g *RefreshGrant) Open(ctx context.Context) (*Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refresh = g.InitialRefreshToken
	if g.Shared {
		// The store is read before each redemption; it need not be
		// reachable for the proxy to start.
		if _, ok := g.Store.(Swapper); !ok {
			return nil, fmt.Errorf("upstream %q: a shared token store must save conditionally (Swap)", g.Name)
		}
		return nil, nil
	}
	rec, err := g.load(ctx)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, nil
	}
	g.refresh, g.stored = rec.RefreshToken, rec.RefreshToken
	if tok := rec.token(); tok.ValidAt(g.now()) {
		return tok, nil
	}
	return nil, nil
}

// load returns the stored record if it is this client's.
func (g *RefreshGrant) load(ctx context.Context) (*Record, error) {
	rec, err := g.Store.Load(ctx, g.Name)
	if err != nil {
		return nil, fmt.Errorf("load stored tokens for %q: %w", g.Name, err)
	}
	return g.own(rec), nil
}

// own returns rec if it holds a refresh token of this client's.
func (g *RefreshGrant) own(rec *Record) *Record {
	switch {
	case rec == nil || rec.RefreshToken == "":
		return nil
	case rec.Fingerprint == g.Fingerprint():
		return rec
	case len(g.Params) > 0 && rec.Fingerprint == g.legacyFingerprint():
		// Written before params were part of the client's identity: the
		// refresh token is ours; the access token may be for other params.
		r := *rec
		r.AccessToken, r.Expiry = "", time.Time{}
		return &r
	}
	g.log().Warn("the stored tokens belong to another client (token url, client id, scopes or params changed); ignoring them")
	return nil
}

// Token redeems the newest refresh token for a new access token.
func (g *RefreshGrant) Token(ctx context.Context) (*Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.Shared {
		return g.sharedToken(ctx)
	}
	var (
		tok      *Token
		redeemed bool
	)
	// Under the Store's lock, from reading the refresh token to saving the
	// one it is rotated to: another process refreshing from the same Store
	// waits, then finds the new one.
	err := g.update(ctx, func(cur *Record) (*Record, error) {
		if rec := g.own(cur); rec != nil && rec.RefreshToken != g.stored {
			// Rotated by another process since this one looked, or stored
			// by a login: redeeming our own would redeem a spent token.
			if g.refresh != "" && g.refresh == g.dead {
				g.log().Info("a new refresh token was stored (login); resuming")
			}
			g.refresh, g.stored = rec.RefreshToken, rec.RefreshToken
			if t := rec.token(); t.ValidAt(g.now()) {
				tok = t // and its access token, while it lasts
				return nil, nil
			}
		}
		if g.refresh == "" || g.refresh == g.dead {
			return nil, g.reauthError()
		}
		t, err := g.redeem(ctx)
		if err != nil {
			return nil, err
		}
		// Saved before it is used: if the save fails, the access token is
		// not handed out, and the next refresh redeems the token kept here.
		tok, redeemed, g.refresh = t, true, t.RefreshToken
		rec := g.record(t)
		return &rec, nil
	})
	switch {
	case err != nil && redeemed:
		return nil, g.unsavedError(err)
	case err != nil:
		return nil, err
	case redeemed:
		g.stored = tok.RefreshToken
	}
	return tok, nil
}

// update runs fn on the stored record under the Store's lock, or, for a
// Store that has none (one this process alone uses), under g.mu, which
// the caller holds. The save is not cut short by a caller that leaves.
func (g *RefreshGrant) update(ctx context.Context, fn func(cur *Record) (*Record, error)) error {
	if u, ok := g.Store.(Updater); ok {
		return u.Update(ctx, g.Name, fn)
	}
	cur, err := g.Store.Load(ctx, g.Name)
	if err != nil {
		return fmt.Errorf("load stored tokens for %q: %w", g.Name, err)
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return err
	}
	return g.Store.Save(context.WithoutCancel(ctx), g.Name, *next)
}

// sharedToken redeems the refresh token the shared Store holds now, and
// swaps in the new one before the access token is used. The Cache calls
// it under the fleet's lock, so no other replica redeems meanwhile; the
// Swap still refuses to save over a rotation it did not start from.
func (g *RefreshGrant) sharedToken(ctx context.Context) (*Token, error) {
	sw := g.Store.(Swapper)
	save := context.WithoutCancel(ctx)
	if u := g.unsaved; u != nil {
		// Redeemed, but not saved: saving it comes first, as nothing else
		// in the fleet has the new refresh token.
		switch err := sw.Swap(save, g.Name, u.old, u.rec); {
		case errors.Is(err, ErrRefreshTokenMoved):
			g.unsaved = nil
			g.log().Warn("a rotated refresh token that could not be saved was overtaken by another replica's; dropping it")
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrSharedStoreUnavailable, g.unsavedError(err))
		default:
			g.unsaved = nil
			if tok := u.rec.token(); tok.ValidAt(g.now()) {
				return tok, nil
			}
		}
	}
	rec, err := g.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSharedStoreUnavailable, err)
	}
	if rec != nil {
		g.refresh = rec.RefreshToken
	}
	if g.refresh == "" || g.refresh == g.dead {
		return nil, g.reauthError()
	}
	old := g.refresh
	tok, err := g.redeem(ctx)
	if err != nil {
		return nil, err
	}
	rec2 := g.record(tok)
	switch err := sw.Swap(save, g.Name, old, rec2); {
	case errors.Is(err, ErrRefreshTokenMoved):
		// Only if a lock ran out mid-redemption: the other replica's
		// rotation is in the store; ours is dropped unused.
		return nil, fmt.Errorf("refresh token for %q was rotated by another replica during this redemption; using theirs: %w", g.Name, err)
	case err != nil:
		g.unsaved = &unsavedRotation{old: old, rec: rec2}
		return nil, fmt.Errorf("%w: %w", ErrSharedStoreUnavailable, g.unsavedError(err))
	}
	g.refresh = tok.RefreshToken
	return tok, nil
}

// redeem asks the endpoint to exchange g.refresh. An invalid_grant marks
// it dead. The returned token always carries the refresh token to keep.
func (g *RefreshGrant) redeem(ctx context.Context) (*Token, error) {
	tok, err := g.request(ctx, [2]string{"grant_type", "refresh_token"}, [2]string{"refresh_token", g.refresh})
	var re *RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		g.dead = g.refresh
		g.log().WithField("detail", re.Error()).
			Errorf("reauthorization required: the refresh token was rejected; run: authproxy login %s", g.Name)
		return nil, fmt.Errorf("%w: %w", g.reauthError(), err)
	}
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		t := *tok // not rotated this time: the old one stays valid
		t.RefreshToken = g.refresh
		tok = &t
	}
	return tok, nil
}

// unsavedError says that a rotated refresh token is held in memory only.
func (g *RefreshGrant) unsavedError(err error) error {
	return fmt.Errorf("save the rotated refresh token for %q (held in memory until a save succeeds): %w", g.Name, err)
}

func (g *RefreshGrant) record(tok *Token) Record {
	return Record{Fingerprint: g.Fingerprint(), RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken,
		TokenType: tok.TokenType, Expiry: tok.Expiry, Updated: tok.Obtained}
}

func (g *RefreshGrant) reauthError() error {
	if g.refresh == "" {
		return fmt.Errorf("%w: no refresh token yet; run: authproxy login %s", ErrReauthorizationRequired, g.Name)
	}
	return fmt.Errorf("%w: the refresh token was rejected; run: authproxy login %s", ErrReauthorizationRequired, g.Name)
}

func (g *RefreshGrant) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *RefreshGrant) log() logrus.FieldLogger {
	if g.Log != nil {
		return g.Log
	}
	l := logrus.New()
	l.Out = io.Discard
	return l
}

// isReauth reports whether err means a login is needed; such failures are
// not retried against the endpoint and are logged once, by the grant.
func isReauth(err error) bool { return errors.Is(err, ErrReauthorizationRequired) }
