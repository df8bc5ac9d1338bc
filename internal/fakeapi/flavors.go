// Package fakeapi serves stand-ins for the real APIs in shared/seeds: a
// token endpoint and a protected API on one server, each with the quirks
// its document describes. The integration tests run them on loopback, and
// `authproxy` with no config runs them as its demo, so that an
// authenticated request can be seen going through without credentials.
package fakeapi

import (
	"net/http"
	"time"
)

// Flavor is how one real API behaves. The zero value of each field is the
// plain RFC 6749 behaviour.
type Flavor struct {
	// Name labels tokens and responses.
	Name string
	// TokenPath is the token endpoint's path.
	TokenPath string
	// APIPath is a protected resource the tests call; every path other
	// than TokenPath is protected.
	APIPath string
	// JSONRequest: the token request's body must be a JSON object
	// (Product Hunt, teen-quotes), not a form.
	JSONRequest bool
	// BasicAuth: the client authenticates with HTTP Basic and must send
	// client_id in the form as well (the generic guide).
	BasicAuth bool
	// TokenType is token_type as the API writes it.
	TokenType string
	// ExpiresIn is the token lifetime; zero means the response carries no
	// expiry and the token works until revoked (Product Hunt).
	ExpiresIn time.Duration
	// AbsoluteExpires adds an "expires" unix timestamp (teen-quotes).
	AbsoluteExpires bool
	// RefreshToken adds a refresh_token to the response (teen-quotes).
	RefreshToken bool
	// RawAuthorization: the API wants "Authorization: <token>" with no
	// scheme (the generic guide).
	RawAuthorization bool
	// RequiredHeaders must arrive with every API request with these values
	// (the generic guide's x-api-key, Referer and Origin).
	RequiredHeaders map[string]string
	// ClientErrorStatus is the status for an unknown client or a wrong
	// secret; zero means 401.
	ClientErrorStatus int
	// NestedErrors: error bodies are not RFC 6749 shaped (RedGIFs documents
	// only the status codes), so the proxy must cope with an odd body.
	NestedErrors bool
	// ThreeLegged: tokens come only from the authorization-code grant (at
	// AuthorizePath, with PKCE) and the refresh-token grant, which rotates
	// the refresh token (Redbooth); client_credentials is refused.
	ThreeLegged   bool
	AuthorizePath string
}

// RedGIFs: form request with the secret in the body, "Bearer", 24 h tokens;
// 401 for an unknown client, 403 for a disabled one.
func RedGIFs() Flavor {
	return Flavor{Name: "redgifs", TokenPath: "/v2/oauth/client", APIPath: "/v2/gifs/search",
		TokenType: "Bearer", ExpiresIn: 24 * time.Hour, NestedErrors: true}
}

// ProductHunt: JSON request, "bearer", and no expires_in at all: the
// client token lasts until the API rejects it.
func ProductHunt() Flavor {
	return Flavor{Name: "producthunt", TokenPath: "/v2/oauth/token", APIPath: "/v2/api/graphql",
		JSONRequest: true, TokenType: "bearer"}
}

// TeenQuotes: JSON request; the response has expires_in (a week), an
// absolute expires and a refresh_token; errors are RFC 6749 shaped with
// 400 for bad requests and 401 for invalid_client.
func TeenQuotes() Flavor {
	return Flavor{Name: "teenquotes", TokenPath: "/oauth", APIPath: "/quotes",
		JSONRequest: true, TokenType: "bearer", ExpiresIn: 7 * 24 * time.Hour, AbsoluteExpires: true, RefreshToken: true}
}

// Generic: the Basic-auth guide. Basic client credentials plus client_id
// in the form; the API takes the raw token in Authorization and insists on
// an API key, a Referer and an Origin.
func Generic() Flavor {
	return Flavor{Name: "generic", TokenPath: "/oauth/token", APIPath: "/my-api-endpoint",
		BasicAuth: true, TokenType: "Bearer", ExpiresIn: time.Hour, RawAuthorization: true,
		RequiredHeaders: map[string]string{"X-Api-Key": "demo-api-key", "Referer": "https://app.example/", "Origin": "https://app.example"}}
}

// Redbooth: three-legged. The authorization code is exchanged for a
// 2-hour access token and a refresh token; every refresh returns a new
// refresh token and the old one stops working; an expired access token
// gets 401 with WWW-Authenticate error="invalid_token".
func Redbooth() Flavor {
	return Flavor{Name: "redbooth", TokenPath: "/oauth/token", AuthorizePath: "/oauth/authorize", APIPath: "/api/3/me",
		TokenType: "bearer", ExpiresIn: 7200 * time.Second, RefreshToken: true, ThreeLegged: true}
}

// All returns every client-credentials flavor.
func All() []Flavor { return []Flavor{RedGIFs(), ProductHunt(), TeenQuotes(), Generic()} }

var _ http.Handler = (*Server)(nil)
