package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Record is what a Store keeps of one upstream's tokens: above all the
// newest refresh token, which is the only way back in without a person
// logging in again.
type Record struct {
	// Fingerprint identifies the client the tokens belong to; see
	// Fingerprint. A record whose fingerprint differs from the caller's
	// is for another client and must not be used.
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

// Fingerprint identifies a client at a token endpoint, so that tokens
// stored for one client are never handed to another after a config
// change. It hides nothing secret: it covers the URL, id and scopes.
func Fingerprint(tokenURL, clientID string, scopes []string) string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	sum := sha256.Sum256([]byte(tokenURL + "\n" + clientID + "\n" + strings.Join(s, " ")))
	return hex.EncodeToString(sum[:8])
}
