package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth/grant"
)

// AuthMethod is how the client authenticates to the token endpoint
// (RFC 6749 2.3.1).
type AuthMethod string

const (
	// ClientSecretPost sends client_id and client_secret in the body
	// (RedGIFs, Product Hunt, teen-quotes).
	ClientSecretPost AuthMethod = grant.SecretPost
	// ClientSecretBasic sends them as HTTP Basic credentials. client_id is
	// sent in the body as well, because some endpoints (the generic
	// Basic-auth guide in the seeds) require it there too.
	ClientSecretBasic AuthMethod = grant.SecretBasic
	// ClientSecretJWT sends a JWT signed with the client secret (RFC 7523
	// 2.2; HS256 by default) instead of the secret itself.
	ClientSecretJWT AuthMethod = grant.SecretJWT
	// PrivateKeyJWT sends a JWT signed with the client's private key, or
	// one the platform wrote to a file (a Kubernetes service-account
	// token): no shared secret at all.
	PrivateKeyJWT AuthMethod = grant.PrivateKeyJWT
	// TLSClientAuth presents the client certificate on the connection to
	// the token endpoint (RFC 8705 2.1); client_id goes in the body.
	TLSClientAuth AuthMethod = grant.TLSClientAuth
	// AuthNone is a public client (RFC 6749 2.1): client_id only.
	AuthNone AuthMethod = grant.None
)

// BodyFormat is how the token request's fields are encoded.
type BodyFormat string

const (
	// FormBody is application/x-www-form-urlencoded, as RFC 6749 says.
	FormBody BodyFormat = "form"
	// JSONBody is a flat JSON object of strings, which Product Hunt and
	// teen-quotes document instead.
	JSONBody BodyFormat = "json"
)

// Client is how a grant reaches its token endpoint: the client's
// identity and how it presents itself. Its fields must not change once a
// grant using it is in use.
type Client struct {
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID identifies the client. Required.
	ClientID string
	// ClientSecret authenticates it; a public client has none.
	ClientSecret string
	// AuthMethod defaults to ClientSecretPost.
	AuthMethod AuthMethod
	// Assertion gives the client assertion of ClientSecretJWT and
	// PrivateKeyJWT, asked anew for every token request. NewSource builds
	// it from the Settings; required with those methods otherwise.
	Assertion AssertionSource
	// BodyFormat defaults to FormBody.
	BodyFormat BodyFormat
	// Scopes, if any, are sent space-separated as "scope" (with the
	// client-credentials grant; the other grants keep what was granted).
	Scopes []string
	// Params are extra fields sent with every token request (audience,
	// resource). A field the grant or the client authentication sets
	// itself wins over one of these.
	Params map[string]string
	// Audience and Resource are sent with every token request too, each
	// value as a field of its own (RFC 8693 2.1, RFC 8707 2): unlike
	// Params, they may repeat. Set each either here or in Params.
	Audience, Resource []string
	// TokenType is the type of token the upstream takes; "" means
	// Bearer. A response of another type is unusable (ErrBadResponse):
	// RFC 6749 7.1 says a client must not use a token whose type it does
	// not understand, and a sender-constrained (DPoP) token sent as a
	// Bearer one would fail, or worse, work where it should not.
	TokenType string
	// DPoP, if set, binds the tokens to its key (RFC 9449): every token
	// request carries a proof, a use_dpop_nonce answer is retried once
	// with the server's nonce, and a token that is not of type DPoP, or
	// a JWT bound to another key, is unusable (ErrBadResponse), whatever
	// TokenType says.
	DPoP *DPoPKey
	// HTTPClient sends the request; nil means http.DefaultClient's
	// transport. Redirects are never followed whatever the client says,
	// so the secret is only ever sent to TokenURL.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Client) endpoint() tokenEndpoint {
	return tokenEndpoint{
		url: c.TokenURL, auth: c.clientAuth(), params: c.Params, audience: c.Audience, resource: c.Resource,
		json: c.BodyFormat == JSONBody, client: c.HTTPClient, now: c.Now, tokenType: c.TokenType, dpop: c.DPoP,
	}
}

// request sends one token request of a grant: the grant's own fields,
// then the client's authentication (client_id always, and the secret or
// assertion its method sends), then the Params the two left unset, then
// Audience and Resource.
func (c Client) request(ctx context.Context, grant ...[2]string) (*Token, error) {
	return c.endpoint().exchange(ctx, grant)
}

// ExchangeCode redeems an authorization code (RFC 6749 4.1.3) with its
// PKCE verifier (RFC 7636; "" if none was used) and the redirect URI the
// authorization request named. The answer carries the refresh token.
// Like every token request, it follows no redirect and its errors hold
// neither the secret nor the code.
func (c Client) ExchangeCode(ctx context.Context, code, verifier, redirectURI string) (*Token, error) {
	fields := [][2]string{{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", redirectURI}}
	if verifier != "" {
		fields = append(fields, [2]string{"code_verifier", verifier})
	}
	return c.request(ctx, fields...)
}

// ClientCredentials fetches a new token with the RFC 6749 4.4
// client-credentials grant on every call; wrap it in a Cache. Its fields
// must not change once it is in use.
type ClientCredentials struct {
	Client
}

var _ Source = (*ClientCredentials)(nil)

// Token requests a new token from the endpoint.
func (c *ClientCredentials) Token(ctx context.Context) (*Token, error) {
	fields := [][2]string{{"grant_type", "client_credentials"}}
	if len(c.Scopes) > 0 {
		fields = append(fields, [2]string{"scope", strings.Join(c.Scopes, " ")})
	}
	return c.request(ctx, fields...)
}

// tokenEndpoint sends one token request and parses the answer; it is the
// part every grant shares.
type tokenEndpoint struct {
	url                string
	auth               clientAuth
	params             map[string]string
	audience, resource []string
	json               bool
	client             *http.Client
	now                func() time.Time
	tokenType          string   // "" means Bearer
	dpop               *DPoPKey // nil: no proof (see dpopExchange)
}

// exchange builds one attempt from the grant's fields and posts it. Every
// error it returns has passed through one redactor holding the attempt's
// secrets (see secretFields). An error of the client authentication (an
// unreadable assertion file) is returned as is: nothing was sent.
func (e tokenEndpoint) exchange(ctx context.Context, grant [][2]string) (*Token, error) {
	if e.dpop != nil {
		return e.dpopExchange(ctx, grant)
	}
	return e.exchangeOnce(ctx, grant)
}

// exchangeOnce builds one attempt and posts it.
func (e tokenEndpoint) exchangeOnce(ctx context.Context, grant [][2]string) (*Token, error) {
	a := &attempt{fields: make([][2]string, 0, len(grant)+len(e.params)+4), header: make(http.Header)}
	a.fields = append(a.fields, grant...)
	if err := e.auth.apply(a); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(e.params)) {
		if !a.has(k) {
			a.add(k, e.params[k])
		}
	}
	for _, v := range e.audience {
		a.add("audience", v)
	}
	for _, v := range e.resource {
		a.add("resource", v)
	}
	others := a.secrets
	// A key in the token URL's query (?api_key=) is a credential too.
	if u, err := url.Parse(e.url); err == nil {
		for _, vs := range u.Query() {
			others = append(others, vs...)
		}
	}
	for _, f := range a.fields {
		if secretFields[f[0]] {
			others = append(others, f[1])
		}
	}
	red := newRedactor("", "", others...)
	tok, err := e.post(ctx, a, red)
	if err != nil {
		return nil, red.error(err)
	}
	return tok, nil
}

func (e tokenEndpoint) post(ctx context.Context, a *attempt, red redactor) (*Token, error) {
	req, err := e.newRequest(ctx, a)
	if err != nil {
		return nil, err
	}
	client := http.DefaultClient
	if e.client != nil {
		client = e.client
	}
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	// A lifetime is counted from when the request was sent: the endpoint
	// may have issued the token as early as that, and counted from its
	// answer a slow endpoint's token would be believed its delay longer
	// than its issuer says, and sent upstream expired.
	sent := now()
	resp, err := noRedirects.Do(req)
	if err != nil {
		// Redacted here, before wrapping: the *url.Error is rebuilt
		// without the token URL's query.
		return nil, fmt.Errorf("token request: %w", red.error(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			// Out of time mid-body is a timeout, as before the headers.
			return nil, fmt.Errorf("token request: reading the body after status %d: %w", resp.StatusCode, err)
		}
		return nil, badResponse("reading the body after status %d: %v", resp.StatusCode, err)
	}
	if len(body) > maxResponseBytes {
		return nil, badResponse("status %d with a body over %d bytes", resp.StatusCode, maxResponseBytes)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Following it would send the secret to wherever Location points.
		return nil, &RetrieveError{StatusCode: resp.StatusCode,
			ErrorDescription: "redirect not followed: credentials are only sent to the configured token url"}
	}
	if e.dpop != nil {
		e.dpop.ObserveNonce(req.URL, resp.Header)
	}
	tok, err := parseTokenResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body, sent)
	if err == nil {
		err = e.checkType(tok, resp.StatusCode)
	}
	if err == nil && e.dpop != nil {
		err = e.dpop.checkBinding(tok.AccessToken, resp.StatusCode)
	}
	var re *RetrieveError
	if errors.As(err, &re) && (re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusServiceUnavailable) {
		re.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now())
	}
	return tok, err
}

func (e tokenEndpoint) newRequest(ctx context.Context, a *attempt) (*http.Request, error) {
	var body, contentType string
	v := make(url.Values, len(a.fields))
	for _, f := range a.fields {
		v[f[0]] = append(v[f[0]], f[1])
	}
	if e.json {
		// A flat object of strings; a field that repeats (an audience)
		// becomes a list of them.
		m := make(map[string]any, len(v))
		for k, vs := range v {
			if len(vs) == 1 {
				m[k] = vs[0]
			} else {
				m[k] = vs
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode token request: %w", err)
		}
		body, contentType = string(b), "application/json"
	} else {
		body, contentType = v.Encode(), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build token request: %w", err)
	}
	for k, vs := range a.header {
		req.Header[k] = vs
	}
	if e.dpop != nil {
		// Signed last, for this attempt alone: a retry gets a new jti.
		proof, err := e.dpop.Proof(http.MethodPost, req.URL, "")
		if err != nil {
			return nil, err
		}
		req.Header["Dpop"] = []string{proof}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "authproxy")
	return req, nil
}

// checkType refuses a token of another type than the one configured,
// naming the type the endpoint sent (the type is not a secret).
func (e tokenEndpoint) checkType(tok *Token, status int) error {
	want := Token{TokenType: e.tokenType}.Type()
	if e.dpop != nil {
		want = DPoPTokenType
	}
	if strings.EqualFold(tok.Type(), want) {
		return nil
	}
	if e.dpop != nil {
		return badResponse("status %d with token_type %q, not DPoP: the token endpoint did not bind the token to token.dpop's key (RFC 9449 5), and it is not sent as another type; turn DPoP on for this client at the provider (Okta: Require DPoP; Keycloak: OAuth 2.0 DPoP bound access tokens)", status, tok.TokenType)
	}
	if strings.EqualFold(tok.TokenType, "DPoP") {
		return badResponse("status %d with token_type %q: a DPoP-bound token (RFC 9449) is useless without a proof of its key on every request, and is not sent as a %s token", status, tok.TokenType, want)
	}
	return badResponse("status %d with token_type %q, but the upstream is set up for %s tokens (RFC 6749 7.1: a client does not use a token of a type it does not understand)",
		status, tok.TokenType, want)
}
