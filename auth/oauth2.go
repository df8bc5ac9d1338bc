package auth

import (
	"context"

	"golang.org/x/oauth2"
)

// OAuth2 adapts src to golang.org/x/oauth2's TokenSource, so that a Go
// program can put this package's caching, single-flight and rotation
// under an oauth2.Transport, or any client library that takes a
// TokenSource. oauth2's Token takes no context: ctx bounds every call.
// The refresh token stays inside src.
func OAuth2(ctx context.Context, src Source) oauth2.TokenSource {
	return oauth2Source{ctx: ctx, src: src}
}

type oauth2Source struct {
	ctx context.Context
	src Source
}

var _ oauth2.TokenSource = oauth2Source{}

func (s oauth2Source) Token() (*oauth2.Token, error) {
	t, err := s.src.Token(s.ctx)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.Type(), Expiry: t.Expiry}, nil
}
