package auth

import (
	"context"
	"errors"
	"time"
)

// Record is what a Store keeps of one upstream's tokens: above all the
// newest refresh token, which is the only way back in without a person
// logging in again.
type Record struct {
	// Fingerprint identifies the client the tokens belong to: its
	// Identity's Client part (Client.Fingerprint). A record whose
	// fingerprint differs from the caller's is another client's and is
	// not used.
	Fingerprint  string    `json:"fingerprint"`
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Updated      time.Time `json:"updated"`
}

// token returns the stored access token; ValidAt tells if it is usable.
func (r *Record) token() *Token {
	return &Token{AccessToken: r.AccessToken, TokenType: r.TokenType, RefreshToken: r.RefreshToken,
		Expiry: r.Expiry, Obtained: r.Updated}
}

// Store keeps Records durably, keyed by upstream name. Save must not
// return before the record would survive a crash of the process.
// Implementations must be safe for concurrent use.
type Store interface {
	// Load returns the record for name, or nil if there is none.
	Load(ctx context.Context, name string) (*Record, error)
	// Save replaces the record for name.
	Save(ctx context.Context, name string, r Record) error
}

// Updater is a Store that can hold a record across a read, a change and
// a save, under a lock that every process sharing the store respects (a
// file lock, for a file). A RefreshGrant needs it so that a refresh token
// is redeemed once when a second process (`authproxy token` next to a
// running proxy) refreshes from the same store. A Store that is not one
// is taken to be used by this process only.
type Updater interface {
	// Update calls fn with the current record for name (nil if none)
	// while holding the lock, and saves the record fn returns, if not nil,
	// before letting the lock go. If fn fails, its error is returned and
	// nothing is saved. fn must not call the Store. Waiting for the lock
	// ends with ctx.
	Update(ctx context.Context, name string, fn func(cur *Record) (*Record, error)) error
}

// Swapper is a Store that saves conditionally. A RefreshGrant shared by
// several replicas needs it: the rotated refresh token replaces the one
// it was redeemed with, or nothing, so a refresh token is redeemed once
// across the fleet even if a lock ran out.
type Swapper interface {
	// Swap saves r for name if the stored record holds the refresh token
	// old, or there is none for r's client; otherwise it returns
	// ErrRefreshTokenMoved and saves nothing.
	Swap(ctx context.Context, name, old string, r Record) error
}

// ErrRefreshTokenMoved is Swap's answer when the stored refresh token is
// no longer the one the caller redeemed.
var ErrRefreshTokenMoved = errors.New("the stored refresh token changed meanwhile")
