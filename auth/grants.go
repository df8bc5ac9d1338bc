package auth

import (
	"context"
	"strings"

	"github.com/authproxy/authproxy/auth/grant"
)

// The grants a source may use besides client credentials and refresh
// tokens: a workload's own identity (jwt-bearer, token exchange), and a
// user's password for the legacy APIs that still want one.
const (
	// GrantJWTBearer presents an assertion as the grant (RFC 7523 2.1):
	// one the platform wrote to a file, or one signed with the private key.
	GrantJWTBearer GrantType = grant.JWTBearer
	// GrantTokenExchange exchanges the platform's token for the API's
	// (RFC 8693): a Kubernetes service-account token for a cloud token.
	GrantTokenExchange GrantType = grant.TokenExchange
	// GrantPassword is the resource owner's password (RFC 6749 4.3).
	GrantPassword GrantType = grant.Password
)

// TokenTypeJWT is the token type of a JWT (RFC 8693 3), the default
// subject_token_type.
const TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"

// JWTBearer fetches a token with the RFC 7523 2.1 jwt-bearer grant on
// every call; wrap it in a Cache. The client authenticates as its Client
// says, which RFC 7523 leaves optional.
type JWTBearer struct {
	Client
	// GrantAssertion is the grant, asked anew for every request: an
	// AssertionFile the platform rotates, or a SignedAssertion. Required.
	GrantAssertion AssertionSource
}

// TokenExchange fetches a token with the RFC 8693 token-exchange grant on
// every call; wrap it in a Cache. The subject and actor tokens are read
// from their files for every request, never kept: the platform replaces
// them before they expire.
type TokenExchange struct {
	Client
	// SubjectTokenFile holds the token to exchange. Required.
	SubjectTokenFile string
	// SubjectTokenType defaults to TokenTypeJWT.
	SubjectTokenType string
	// ActorTokenFile, if set, holds the token of the party acting for the
	// subject; ActorTokenType then defaults to TokenTypeJWT.
	ActorTokenFile, ActorTokenType string
	// RequestedTokenType, if set, says which kind of token to issue.
	RequestedTokenType string
}

// PasswordGrant fetches a token with the RFC 6749 4.3 resource owner
// password grant on every call; wrap it in a Cache.
type PasswordGrant struct {
	Client
	Username, Password string
}

var (
	_ Source = (*JWTBearer)(nil)
	_ Source = (*TokenExchange)(nil)
	_ Source = (*PasswordGrant)(nil)
)

// Token requests a new token with a new assertion.
func (g *JWTBearer) Token(ctx context.Context) (*Token, error) {
	a, err := g.GrantAssertion.Assertion()
	if err != nil {
		return nil, err
	}
	return g.request(ctx, g.withScope([2]string{"grant_type", string(GrantJWTBearer)}, [2]string{"assertion", a})...)
}

// Token reads the subject (and actor) token and exchanges it.
func (g *TokenExchange) Token(ctx context.Context) (*Token, error) {
	subject, err := ReadTokenFile(g.SubjectTokenFile)
	if err != nil {
		return nil, err
	}
	fields := [][2]string{{"grant_type", string(GrantTokenExchange)},
		{"subject_token", subject}, {"subject_token_type", orJWT(g.SubjectTokenType)}}
	if g.ActorTokenFile != "" {
		actor, err := ReadTokenFile(g.ActorTokenFile)
		if err != nil {
			return nil, err
		}
		fields = append(fields, [2]string{"actor_token", actor}, [2]string{"actor_token_type", orJWT(g.ActorTokenType)})
	}
	if g.RequestedTokenType != "" {
		fields = append(fields, [2]string{"requested_token_type", g.RequestedTokenType})
	}
	return g.request(ctx, g.withScope(fields...)...)
}

// Token requests a new token with the user's credentials.
func (g *PasswordGrant) Token(ctx context.Context) (*Token, error) {
	return g.request(ctx, g.withScope([2]string{"grant_type", string(GrantPassword)},
		[2]string{"username", g.Username}, [2]string{"password", g.Password})...)
}

// withScope adds the Scopes to a grant that asks for a new token.
func (c Client) withScope(fields ...[2]string) [][2]string {
	if len(c.Scopes) > 0 {
		fields = append(fields, [2]string{"scope", strings.Join(c.Scopes, " ")})
	}
	return fields
}

func orJWT(tokenType string) string {
	if tokenType == "" {
		return TokenTypeJWT
	}
	return tokenType
}
