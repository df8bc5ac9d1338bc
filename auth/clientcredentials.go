package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AuthMethod is how the client authenticates to the token endpoint
// (RFC 6749 2.3.1).
type AuthMethod string

const (
	// ClientSecretPost sends client_id and client_secret in the body
	// (RedGIFs, Product Hunt, teen-quotes).
	ClientSecretPost AuthMethod = "client_secret_post"
	// ClientSecretBasic sends them as HTTP Basic credentials. client_id is
	// sent in the body as well, because some endpoints (the generic
	// Basic-auth guide in the seeds) require it there too.
	ClientSecretBasic AuthMethod = "client_secret_basic"
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
	// BodyFormat defaults to FormBody.
	BodyFormat BodyFormat
	// Scopes, if any, are sent space-separated as "scope" (with the
	// client-credentials grant; the other grants keep what was granted).
	Scopes []string
	// Params are extra fields sent with every token request (audience,
	// resource). A field the grant sets itself wins over one of these.
	Params map[string]string
	// HTTPClient sends the request; nil means http.DefaultClient's
	// transport. Redirects are never followed whatever the client says,
	// so the secret is only ever sent to TokenURL.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Client) endpoint() tokenEndpoint {
	return tokenEndpoint{
		url: c.TokenURL, clientID: c.ClientID, clientSecret: c.ClientSecret,
		basic: c.AuthMethod == ClientSecretBasic, json: c.BodyFormat == JSONBody,
		client: c.HTTPClient, now: c.Now,
	}
}

// request sends one token request of a grant: the Params, then the
// grant's own fields (which win over a param of the same name), then the
// client's identity: client_id always, the secret in the body unless it
// goes as HTTP Basic or there is none.
func (c Client) request(ctx context.Context, grant ...[2]string) (*Token, error) {
	fields := make([][2]string, 0, len(c.Params)+len(grant)+2)
	for k, v := range c.Params {
		fields = append(fields, [2]string{k, v})
	}
	fields = append(fields, grant...)
	fields = append(fields, [2]string{"client_id", c.ClientID})
	if c.AuthMethod != ClientSecretBasic && c.ClientSecret != "" {
		fields = append(fields, [2]string{"client_secret", c.ClientSecret})
	}
	return c.endpoint().exchange(ctx, fields)
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
	url                    string
	clientID, clientSecret string
	basic, json            bool
	client                 *http.Client
	now                    func() time.Time
}

// exchange posts fields to the endpoint. Every error it returns has
// passed through one redactor holding the request's secrets (the client
// secret, and the refresh token, code or verifier among the fields).
func (e tokenEndpoint) exchange(ctx context.Context, fields [][2]string) (*Token, error) {
	var others []string
	for _, f := range fields {
		if f[0] == "refresh_token" || f[0] == "code" || f[0] == "code_verifier" {
			others = append(others, f[1])
		}
	}
	red := newRedactor(e.clientID, e.clientSecret, others...)
	tok, err := e.post(ctx, fields, red)
	if err != nil {
		return nil, red.error(err)
	}
	return tok, nil
}

func (e tokenEndpoint) post(ctx context.Context, fields [][2]string, red redactor) (*Token, error) {
	req, err := e.newRequest(ctx, fields)
	if err != nil {
		return nil, err
	}
	client := http.DefaultClient
	if e.client != nil {
		client = e.client
	}
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
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
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	tok, err := parseTokenResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body, now())
	var re *RetrieveError
	if errors.As(err, &re) && (re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusServiceUnavailable) {
		re.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now())
	}
	return tok, err
}

func (e tokenEndpoint) newRequest(ctx context.Context, fields [][2]string) (*http.Request, error) {
	var body, contentType string
	if e.json {
		m := make(map[string]string, len(fields))
		for _, f := range fields {
			m[f[0]] = f[1]
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode token request: %w", err)
		}
		body, contentType = string(b), "application/json"
	} else {
		v := make(url.Values, len(fields))
		for _, f := range fields {
			v.Set(f[0], f[1])
		}
		body, contentType = v.Encode(), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build token request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "authproxy")
	if e.basic {
		// RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(e.clientID), url.QueryEscape(e.clientSecret))
	}
	return req, nil
}
