package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/authproxy/authproxy/auth/grant"
	"github.com/authproxy/authproxy/pki"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
)

// GrantType names how a source gets its tokens (RFC 6749 4.4 and 6).
type GrantType string

const (
	// GrantClientCredentials asks for a token with the client's own
	// credentials (RedGIFs, Product Hunt, teen-quotes). It is the default.
	GrantClientCredentials GrantType = grant.ClientCredentials
	// GrantRefreshToken redeems a refresh token that rotates on every use
	// (Redbooth); the first one comes from Login.
	GrantRefreshToken GrantType = grant.RefreshToken
)

// Settings are one upstream's token settings: everything NewSource needs
// to build the upstream's token source. A zero duration takes the Cache's
// default, as CacheOptions says.
type Settings struct {
	// Name is the upstream's name: the key of its record in a Store and of
	// its token in a Shared store, and a field of every log line.
	Name string
	// Grant is how tokens are got; "" means GrantClientCredentials.
	Grant GrantType
	// Client is the token endpoint and how the client presents itself. Its
	// HTTPClient and Now, if nil, are taken from Options.
	Client Client
	// RefreshToken seeds a Store that holds no refresh token for this
	// client yet (GrantRefreshToken only); a stored one always wins.
	RefreshToken string
	// RefreshBefore, DefaultLifetime and MinRefreshInterval are the
	// CacheOptions of the same names; Timeout is its FetchTimeout.
	RefreshBefore, DefaultLifetime, MinRefreshInterval, Timeout time.Duration
	// Target is where the tokens are sent. It is never sent to the token
	// endpoint: it is part of the Identity only, so that a token is not
	// kept for an upstream whose address changed.
	Target string

	// The client's authentication, beyond Client.AuthMethod and its
	// secret (see clientsetup.go). Only file names: NewSource reads them.

	// PrivateKeyFile signs the client assertions of PrivateKeyJWT and,
	// with GrantJWTBearer and no AssertionFile, the grant's assertion (PEM;
	// see pki.ReadKeyFile). A certificate in the same file is named in each
	// assertion's x5t and x5t#S256 headers, as Entra ID wants.
	PrivateKeyFile string
	// KeyID is the assertions' kid header ("": none); SigningAlg their
	// alg ("": from the key, or HS256 for ClientSecretJWT);
	// AssertionAudience their aud ("": the token URL).
	KeyID             string
	SigningAlg        SigningAlg
	AssertionAudience string
	// ClientAssertionFile holds the client assertion of PrivateKeyJWT
	// when the platform writes it (a projected service-account token, a
	// SPIFFE JWT-SVID): read for every token request.
	ClientAssertionFile string
	// TLS is how the token endpoint is reached: a private CA to trust,
	// and the client certificate of TLSClientAuth, reloaded when it
	// changes. Set, it gives the source an HTTP client of its own.
	TLS pki.TLSFiles

	// The grants' own settings.

	// AssertionFile is GrantJWTBearer's assertion, read for every token
	// request; without one, it is signed with PrivateKeyFile.
	AssertionFile string
	// SubjectTokenFile and the rest are GrantTokenExchange's; see
	// TokenExchange.
	SubjectTokenFile, SubjectTokenType string
	ActorTokenFile, ActorTokenType     string
	RequestedTokenType                 string
	// Username and Password are GrantPassword's.
	Username, Password string

	// DPoPKeyFile, if set, binds the tokens to its key (RFC 9449; see
	// Client.DPoP and DPoPKey): read once, when the source is built.
	// DPoPSigningAlg is the proofs' alg ("": the key's default).
	DPoPKeyFile    string
	DPoPSigningAlg SigningAlg
}

// Options are what every source of a process shares. The zero value of
// each field has the meaning its comment gives.
type Options struct {
	// Store keeps refresh tokens across restarts. Required for
	// GrantRefreshToken; unused otherwise.
	Store Store
	// Shared, if set, is the store the replicas of a fleet share tokens
	// through (see CacheOptions.Shared); Store must then be it too, for
	// refresh tokens. LockTTL is CacheOptions.LockTTL.
	Shared  Shared
	LockTTL time.Duration
	// HTTPClient sends token requests; nil gives each source a client of
	// its own over a clone of http.DefaultTransport.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives token events, never a token; nil discards them.
	Log logrus.FieldLogger
	// OnFetch and OnShared are the CacheOptions hooks of the same names.
	OnFetch  func(reason string, err error)
	OnShared func(event string)
	// TracerProvider, if set, traces each source's token waits, fetches
	// and token requests (with a W3C traceparent), and the Shared store's
	// calls; nil traces nothing.
	TracerProvider trace.TracerProvider
}

// NewSource builds the token source an upstream's settings ask for: the
// grant, wrapped in a Cache that shares one fetch between concurrent
// callers, refreshes early and, with a Shared store, shares its token with
// the fleet. A refresh-token source reads its Store here: a stored access
// token that is still valid is served without a token request, so a
// restart costs none. The source reports s.Identity() as its Identity.
func NewSource(ctx context.Context, s Settings, o Options) (*Cache, error) {
	client, signed, err := s.client(o)
	if err != nil {
		return nil, err
	}
	client.HTTPClient = traceTokenEndpoint(client.HTTPClient, o.TracerProvider)
	id := s.Identity()
	copts := CacheOptions{
		RefreshBefore:      s.RefreshBefore,
		DefaultLifetime:    s.DefaultLifetime,
		MinRefreshInterval: s.MinRefreshInterval,
		FetchTimeout:       s.Timeout,
		Now:                o.Now,
		Log:                o.Log,
		OnFetch:            o.OnFetch,
		TracerProvider:     o.TracerProvider,
	}
	refresh := s.Grant == GrantRefreshToken
	if o.Shared != nil {
		copts.Shared, copts.SharedKey, copts.LockTTL, copts.OnShared = o.Shared, s.Name+":"+id.Client, o.LockTTL, o.OnShared
		// Any replica may hold its own client-credentials token; a refresh
		// token redeemed twice can lock the account out.
		copts.LocalFallback = !refresh
	}
	var src Source
	switch s.Grant {
	case "", GrantClientCredentials:
		src = &ClientCredentials{Client: client}
	case GrantRefreshToken:
		if o.Store == nil {
			return nil, fmt.Errorf("upstream %q: a refresh-token source needs a Store", s.Name)
		}
		grant := &RefreshGrant{Client: client, Name: s.Name, InitialRefreshToken: s.RefreshToken,
			Store: traceStore(o.Store, o.TracerProvider), Log: o.Log, Shared: o.Shared != nil}
		stored, err := grant.Open(ctx)
		if err != nil {
			return nil, err
		}
		if stored != nil && o.Log != nil {
			o.Log.Info("reusing the stored access token")
		}
		copts.Initial, src = stored, grant
	default:
		if src, err = s.otherGrant(client, signed); err != nil {
			return nil, err
		}
	}
	c := NewCache(src, copts)
	c.identity, c.dpop = id, client.DPoP
	c.traceAs(s.Name, s.Grant, client.AuthMethod)
	return c, nil
}

// Login completes the authorization-code flow (RFC 6749 4.1) of a
// refresh-token upstream: it redeems code, with the PKCE verifier ("" if
// none) and the redirect URI the authorization request named, and saves
// the tokens to o.Store, where the source NewSource builds from the same
// settings finds them, in this process or a running proxy.
func Login(ctx context.Context, s Settings, o Options, code, verifier, redirectURI string) error {
	if o.Store == nil {
		return errors.New("login needs a Store to keep the refresh token in")
	}
	// The client authenticates as the proxy's refreshes will.
	client, _, err := s.client(o)
	if err != nil {
		return err
	}
	tok, err := client.ExchangeCode(ctx, code, verifier, redirectURI)
	if err != nil {
		return fmt.Errorf("exchanging the code: %w", err)
	}
	if tok.RefreshToken == "" {
		return errors.New("the token endpoint gave no refresh_token; check the API's docs for how to ask for offline access")
	}
	rec := Record{Fingerprint: client.Fingerprint(), RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken,
		TokenType: tok.TokenType, Expiry: tok.Expiry, Updated: tok.Obtained}
	if err := o.Store.Save(context.WithoutCancel(ctx), s.Name, rec); err != nil {
		return fmt.Errorf("storing the tokens: %w", err)
	}
	return nil
}
