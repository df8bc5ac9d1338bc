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
// and the new refresh token (with the access token) is saved to the Store
// before the access token is handed out, so a crash never loses the only
// valid refresh token once it could have been used.
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

	mu         sync.Mutex // serializes refreshes and guards the fields below
	refresh    string     // the newest refresh token
	dead       string     // the refresh token the endpoint rejected, if any
	lastReload time.Time
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
	g.refresh = rec.RefreshToken
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
	if rec == nil || rec.RefreshToken == "" {
		return nil, nil
	}
	if rec.Fingerprint != g.fingerprint() {
		g.log().Warn("the stored tokens belong to another client (token url, client id or scopes changed); ignoring them")
		return nil, nil
	}
	return rec, nil
}

// Token redeems the newest refresh token for a new access token.
func (g *RefreshGrant) Token(ctx context.Context) (*Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.Shared {
		return g.sharedToken(ctx)
	}
	if g.refresh == "" || g.refresh == g.dead {
		rec := g.reload(ctx)
		if rec == nil {
			return nil, g.reauthError()
		}
		// A login stores an access token too: use it before redeeming.
		if tok := rec.token(); tok.ValidAt(g.now()) {
			return tok, nil
		}
	}
	tok, err := g.redeem(ctx)
	if err != nil {
		return nil, err
	}
	// On disk before it is used: if this fails, the access token is not
	// handed out and the next refresh retries with the token kept below.
	g.refresh = tok.RefreshToken
	if err := g.Store.Save(context.WithoutCancel(ctx), g.Name, g.record(tok)); err != nil {
		return nil, g.unsavedError(err)
	}
	return tok, nil
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
	return Record{Fingerprint: g.fingerprint(), RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken,
		TokenType: tok.TokenType, Expiry: tok.Expiry, Updated: tok.Obtained}
}

// reload looks for a refresh token newer than the dead one, which
// `authproxy login` writes to the Store while the proxy runs, and returns
// its record. It looks at most once a second.
func (g *RefreshGrant) reload(ctx context.Context) *Record {
	now := g.now()
	if !g.lastReload.IsZero() && now.Sub(g.lastReload) < time.Second {
		return nil
	}
	g.lastReload = now
	rec, err := g.load(ctx)
	if err != nil || rec == nil || rec.RefreshToken == g.dead {
		return nil
	}
	g.refresh = rec.RefreshToken
	g.log().Info("a new refresh token was stored (login); resuming")
	return rec
}

func (g *RefreshGrant) reauthError() error {
	if g.refresh == "" {
		return fmt.Errorf("%w: no refresh token yet; run: authproxy login %s", ErrReauthorizationRequired, g.Name)
	}
	return fmt.Errorf("%w: the refresh token was rejected; run: authproxy login %s", ErrReauthorizationRequired, g.Name)
}

func (g *RefreshGrant) fingerprint() string { return Fingerprint(g.TokenURL, g.ClientID, g.Scopes) }

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
