// Package auth obtains OAuth2 access tokens and keeps them fresh.
//
// A Source hands out tokens; grants such as ClientCredentials fetch a new
// token on every call, and a Cache wraps a grant to add single-flight
// fetching, early background refresh and Invalidate. Every Source in this
// package is safe for concurrent use. Nothing here logs or formats a token
// or secret: Token's String method redacts itself so a stray %v cannot leak.
package auth

import (
	"context"
	"strings"
	"time"
)

// Source hands out access tokens. Implementations must be safe for
// concurrent use.
type Source interface {
	Token(ctx context.Context) (*Token, error)
}

// Token is an access token and what the token endpoint said of it.
// Tokens are shared between goroutines and must not be modified once a
// Source has returned them.
type Token struct {
	// AccessToken is the secret sent upstream.
	AccessToken string
	// TokenType is the type as the endpoint sent it ("bearer", "Bearer",
	// or empty); see Type for the normalised form.
	TokenType string
	// RefreshToken is kept when the endpoint sends one; empty otherwise.
	RefreshToken string
	// Scope is the granted scope, if the endpoint said.
	Scope string
	// Expiry is when the token stops working. The zero value means the
	// endpoint gave no lifetime: the token is used until a 401 says it is
	// dead (Product Hunt's client tokens behave this way).
	Expiry time.Time
	// Obtained is when the token request that got it was sent, where
	// its lifetime starts at the latest; with Expiry it gives the
	// lifetime that early refresh is clamped to.
	Obtained time.Time
}

// Type returns the token type for an Authorization header: RFC 6750
// says the scheme is case-insensitive, but some APIs only accept
// "Bearer", and several endpoints answer "bearer", so it is normalised.
// An empty type is taken to be Bearer, as RFC 6749 7.1 makes it the
// common case.
func (t Token) Type() string {
	if t.TokenType == "" || strings.EqualFold(t.TokenType, "bearer") {
		return "Bearer"
	}
	if strings.EqualFold(t.TokenType, DPoPTokenType) {
		return DPoPTokenType // RFC 9449 7.1's spelling of the scheme
	}
	return t.TokenType
}

// ValidAt reports whether the token can still be sent at now.
func (t *Token) ValidAt(now time.Time) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || now.Before(t.Expiry))
}

// String describes the token without revealing it, so that a token that
// ends up in a log line or an error by accident leaks nothing.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString("token(type=")
	b.WriteString(t.Type())
	b.WriteString(", access=[redacted]")
	if t.RefreshToken != "" {
		b.WriteString(", refresh=[redacted]")
	}
	if !t.Expiry.IsZero() {
		b.WriteString(", expires=")
		b.WriteString(t.Expiry.UTC().Format(time.RFC3339))
	}
	b.WriteString(")")
	return b.String()
}

// GoString redacts like String, for %#v.
func (t Token) GoString() string { return t.String() }
