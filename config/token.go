package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth/grant"
)

// The grant types and client authentication methods, as written; what
// each takes is grant's table.
const (
	grantClientCredentials = grant.ClientCredentials
	grantRefreshToken      = grant.RefreshToken
	grantPassword          = grant.Password
	grantJWTBearer         = grant.JWTBearer
	grantTokenExchange     = grant.TokenExchange
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"

	methodSecretPost    = grant.SecretPost
	methodSecretBasic   = grant.SecretBasic
	methodSecretJWT     = grant.SecretJWT
	methodPrivateKey    = grant.PrivateKeyJWT
	methodTLSClientAuth = grant.TLSClientAuth
	methodNone          = grant.None
)

var signingAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"}

const (
	defaultRefreshBefore = 10 * time.Minute
	defaultTokenTimeout  = 10 * time.Second
	// defaultMinRefreshInterval is auth.DefaultMinRefreshInterval
	// (config does not import auth): under half the shortest honest
	// lifetime, 1 s, so that such a token is still refreshed ahead of its
	// expiry.
	defaultMinRefreshInterval = 500 * time.Millisecond
	maxMinRefreshInterval     = time.Minute
	defaultRedirectURI        = "http://127.0.0.1:8085/callback"
)

// reservedParam are the token request's fields that the proxy sets, for
// some grant or client authentication: a param of the same name would be
// overridden without a word, or sent beside the real one.
var reservedParam = map[string]bool{"grant_type": true, "client_id": true, "client_secret": true, "scope": true,
	"refresh_token": true, "code": true, "code_verifier": true, "redirect_uri": true,
	"client_assertion": true, "client_assertion_type": true, "assertion": true,
	"subject_token": true, "subject_token_type": true, "actor_token": true, "actor_token_type": true,
	"requested_token_type": true, "username": true, "password": true}

// Token says how to get the upstream's access token.
type Token struct {
	GrantType    string
	URL          string
	ClientID     string
	ClientSecret Secret
	// AuthMethod is client_secret_post, client_secret_basic,
	// client_secret_jwt, private_key_jwt, tls_client_auth or none.
	AuthMethod string
	BodyFormat string // form | json
	Scopes     []string
	Params     map[string]string
	// Audience and Resource are sent with every token request, a field
	// per value.
	Audience, Resource []string
	RefreshBefore      time.Duration
	DefaultLifetime    time.Duration // zero: keep a token without expiry until a 401
	// TokenType is the type of token the upstream takes, Bearer by
	// default; a token endpoint's answer of another type is not used.
	TokenType string
	// MinRefreshInterval spaces the token requests made for expiry; a
	// token is never used past its expiry, and one that lives shorter
	// makes the requests after it wait. Zero: no bound.
	MinRefreshInterval time.Duration
	Timeout            time.Duration
	// RefreshToken seeds the refresh_token grant; a stored one wins.
	RefreshToken Secret
	// AuthorizeURL and RedirectURI are for `authproxy login`.
	AuthorizeURL string
	RedirectURI  string

	// Client assertions (client_secret_jwt, private_key_jwt, and the
	// jwt-bearer grant's): the key file's path, parsed by auth.
	PrivateKeyFile      string
	KeyID               string
	SigningAlg          string
	AssertionAudience   string
	ClientAssertionFile string
	// TLS is the token endpoint's: a private CA, the client certificate
	// of tls_client_auth.
	TLS TLS

	// AssertionFile is the jwt-bearer grant's assertion.
	AssertionFile string
	// The token-exchange grant's: the files are read for every request.
	SubjectTokenFile, SubjectTokenType string
	ActorTokenFile, ActorTokenType     string
	RequestedTokenType                 string
	// Username and Password are the password grant's.
	Username string
	Password Secret

	// DPoP, if set, binds the tokens to a key (see dpop.go).
	DPoP *DPoP

	// Obsolete are keys the file sets that are accepted but no longer
	// used, each with what to do: warnings, for check and serve's start,
	// not problems, so that a config written for an older version still
	// loads.
	Obsolete []Problem
}

type fileToken struct {
	GrantType        string            `mapstructure:"grant_type"`
	URL              string            `mapstructure:"url"`
	ClientID         string            `mapstructure:"client_id"`
	ClientSecret     string            `mapstructure:"client_secret"`
	ClientSecretFile string            `mapstructure:"client_secret_file"`
	AuthMethod       string            `mapstructure:"auth_method"`
	BodyFormat       string            `mapstructure:"body_format"`
	Scopes           []string          `mapstructure:"scopes"`
	Params           map[string]string `mapstructure:"params"` // names keep their case: see keepParamCase
	RefreshBefore    *duration         `mapstructure:"refresh_before"`
	DefaultLifetime  *duration         `mapstructure:"default_lifetime"`
	MinLifetime      *duration         `mapstructure:"min_lifetime"` // obsolete: see Token.Obsolete
	MinRefresh       *duration         `mapstructure:"min_refresh_interval"`
	Timeout          *duration         `mapstructure:"timeout"`
	TokenType        string            `mapstructure:"token_type"`
	RefreshToken     string            `mapstructure:"refresh_token"`
	RefreshTokenFile string            `mapstructure:"refresh_token_file"`
	AuthorizeURL     string            `mapstructure:"authorize_url"`
	RedirectURI      string            `mapstructure:"redirect_uri"`
	Audience         []string          `mapstructure:"audience"`
	Resource         []string          `mapstructure:"resource"`

	PrivateKeyFile      string  `mapstructure:"private_key_file"`
	KeyID               string  `mapstructure:"key_id"`
	SigningAlg          string  `mapstructure:"signing_alg"`
	AssertionAudience   string  `mapstructure:"assertion_audience"`
	ClientAssertionFile string  `mapstructure:"client_assertion_file"`
	TLS                 fileTLS `mapstructure:"tls"`

	AssertionFile      string `mapstructure:"assertion_file"`
	SubjectTokenFile   string `mapstructure:"subject_token_file"`
	SubjectTokenType   string `mapstructure:"subject_token_type"`
	ActorTokenFile     string `mapstructure:"actor_token_file"`
	ActorTokenType     string `mapstructure:"actor_token_type"`
	RequestedTokenType string `mapstructure:"requested_token_type"`
	Username           string `mapstructure:"username"`
	Password           string `mapstructure:"password"`
	PasswordFile       string `mapstructure:"password_file"`

	DPoP fileDPoP `mapstructure:"dpop"`
}

// token checks upstreams.NAME.token, whose key is tk.
func (p *Problems) token(tk string, ft fileToken, dir string) Token {
	t := Token{
		GrantType:       orDefault(ft.GrantType, "client_credentials"),
		ClientID:        ft.ClientID,
		AuthMethod:      orDefault(ft.AuthMethod, "client_secret_post"),
		BodyFormat:      orDefault(ft.BodyFormat, "form"),
		Scopes:          ft.Scopes,
		Params:          ft.Params,
		RefreshBefore:   ft.RefreshBefore.or(defaultRefreshBefore),
		DefaultLifetime: ft.DefaultLifetime.or(0),
		Timeout:         ft.Timeout.or(defaultTokenTimeout),
		TokenType:       orDefault(ft.TokenType, "Bearer"),

		MinRefreshInterval: ft.MinRefresh.or(defaultMinRefreshInterval),
	}
	knownGrant := p.grantType(tk, t.GrantType)
	if tu := p.url(tk+".url", ft.URL); tu != nil {
		t.URL = tu.String()
	}
	if ft.ClientID == "" {
		p.required(tk+".client_id", nil, "required; write the client id the API gave you, or ${ENV_VAR}")
	}
	t.ClientSecret = p.clientSecret(tk, t.GrantType, t.AuthMethod, ft, dir)
	if t.GrantType == "refresh_token" {
		p.refreshGrant(tk, &t, ft, dir)
	} else if knownGrant && (ft.RefreshToken != "" || ft.RefreshTokenFile != "" || ft.AuthorizeURL != "" || ft.RedirectURI != "") {
		// Not for a grant_type that is not known: its problem says what to write.
		p.add(tk+".grant_type", "refresh_token, authorize_url and redirect_uri go with grant_type: refresh_token")
	}
	p.oneOf(tk+".auth_method", t.AuthMethod, methodSecretPost, methodSecretBasic, methodSecretJWT, methodPrivateKey, methodTLSClientAuth, methodNone)
	p.oneOf(tk+".body_format", t.BodyFormat, "form", "json")
	p.assertions(tk, &t, ft, dir)
	p.grantSettings(tk, &t, ft, dir)
	for k := range ft.Params {
		if reservedParam[strings.ToLower(k)] {
			p.add(tk+".params."+k, "is set by the proxy; remove it (scopes go in token.scopes)")
		}
	}
	if t.Timeout <= 0 {
		p.add(tk+".timeout", "must be more than 0; write e.g. 10s")
	}
	if t.DPoP = p.dpop(tk, ft.DPoP, dir); t.DPoP != nil {
		t.TokenType = p.dpopTokenType(tk, ft.TokenType)
	} else {
		t.TokenType = p.tokenType(tk, t.TokenType)
	}
	if t.MinRefreshInterval < 0 || t.MinRefreshInterval > maxMinRefreshInterval {
		p.add(tk+".min_refresh_interval", "must be between 0 and %s; write e.g. 500ms", maxMinRefreshInterval)
	}
	if ft.MinLifetime != nil {
		// It raised every shorter lifetime to itself (30 s by default), so
		// a 3 s token was sent for 27 s after the API stopped taking it.
		t.Obsolete = append(t.Obsolete, Problem{Key: tk + ".min_lifetime",
			Message: "no longer used: a token is used only until it expires; remove it (token requests are spaced by min_refresh_interval, default 500ms)"})
	}
	return t
}

// grantType checks grant_type, and reports whether it is one the proxy
// knows.
func (p *Problems) grantType(tk, grant string) (known bool) {
	if strings.ReplaceAll(strings.ToLower(grant), "-", "_") == "authorization_code" {
		// The grant of APIs that act for a user: the proxy has no user.
		name := strings.TrimSuffix(strings.TrimPrefix(tk, "upstreams."), ".token")
		p.add(tk+".grant_type", "%q is not allowed: the proxy cannot do its interactive part, in a browser; write grant_type: refresh_token and authorize_url, "+
			"and log in once with authproxy login %s: the proxy then uses the refresh token that login stores", grant, name)
		return false
	}
	return p.oneOf(tk+".grant_type", grant, grantClientCredentials, grantRefreshToken, grantPassword, grantJWTBearer, grantTokenExchange)
}

// refreshGrant reads what the refresh-token grant and login take: the
// refresh token, the authorize and redirect URLs.
func (p *Problems) refreshGrant(tk string, t *Token, ft fileToken, dir string) {
	t.RefreshToken = p.secretValue(tk, "refresh_token", ft.RefreshToken, ft.RefreshTokenFile, dir, false)
	if ft.AuthorizeURL != "" {
		if au := p.url(tk+".authorize_url", ft.AuthorizeURL); au != nil {
			t.AuthorizeURL = au.String()
		}
	}
	t.RedirectURI = orDefault(ft.RedirectURI, defaultRedirectURI)
	if ru := p.url(tk+".redirect_uri", t.RedirectURI); ru != nil && !isLoopback(ru.Hostname()) {
		p.add(tk+".redirect_uri", "must be on this machine (localhost or 127.0.0.1), where authproxy login listens for it")
	}
}

// tokenType checks token_type for a token without DPoP, and spells
// Bearer as the header does.
func (p *Problems) tokenType(tk, typ string) string {
	switch {
	case strings.EqualFold(typ, "bearer"):
		return "Bearer"
	case strings.EqualFold(typ, "dpop"):
		p.add(tk+".token_type", "DPoP tokens need a proof of a key with every request (RFC 9449): write token.dpop.private_key_file, the key to prove; or remove token_type to take Bearer tokens")
	case !headerPattern.MatchString(typ):
		p.add(tk+".token_type", "%q is not a token type; write e.g. Bearer, or the type the token endpoint answers with (N_A, MAC)", typ)
	}
	return typ
}

// clientSecret reads client_secret or client_secret_file: required where
// the method signs or sends it, and for the client-credentials grant; a
// refresh-token client may be public (PKCE at login), and the
// jwt-bearer, token-exchange and password grants may have no client
// authentication at all. A secret the method would not use is refused
// rather than ignored.
func (p *Problems) clientSecret(tk, grantType, method string, ft fileToken, dir string) Secret {
	given := ft.ClientSecret != "" || ft.ClientSecretFile != ""
	switch grant.Methods[method].Secret {
	case grant.SecretNone:
		if given {
			p.add(tk+".client_secret", "auth_method %s sends no client secret; remove client_secret and client_secret_file", method)
		}
		return ""
	case grant.SecretSigns:
		return p.secretValue(tk, "client_secret", ft.ClientSecret, ft.ClientSecretFile, dir, true)
	}
	if grant.Grants[grantType].NeedsSecret || given {
		return p.secretValue(tk, "client_secret", ft.ClientSecret, ft.ClientSecretFile, dir, true)
	}
	return ""
}

// assertions checks the keys of client assertions and of the token
// endpoint's TLS. Whether a key parses (pki) and fits signing_alg (auth) is theirs to
// say: authproxy check asks it, and so does the proxy at start.
func (p *Problems) assertions(tk string, t *Token, ft fileToken, dir string) {
	// The jwt-bearer grant signs its own assertion with the key when it
	// is given none to present.
	keySignsGrant := grant.KeySignsGrant(t.GrantType, ft.AssertionFile != "")
	keyUsed := grant.KeyUsed(t.GrantType, t.AuthMethod, ft.AssertionFile != "")
	method := grant.Methods[t.AuthMethod]
	t.PrivateKeyFile = p.readableFile(tk+".private_key_file", ft.PrivateKeyFile, dir)
	t.ClientAssertionFile = absPath(ft.ClientAssertionFile, dir)
	t.KeyID, t.SigningAlg, t.AssertionAudience = ft.KeyID, ft.SigningAlg, ft.AssertionAudience
	switch {
	case ft.PrivateKeyFile != "" && !keyUsed:
		p.add(tk+".private_key_file", "is used with auth_method: private_key_jwt, or to sign the assertion of grant_type: %s; remove it, or set one of those", grantJWTBearer)
	case method.Assertion && ft.PrivateKeyFile == "" && ft.ClientAssertionFile == "":
		p.required(tk+".private_key_file", []string{tk + ".client_assertion_file"}, "private_key_jwt needs a key to sign with: write private_key_file: /path/key.pem, or client_assertion_file: the platform's token (e.g. a projected service-account token)")
	case method.Assertion && ft.PrivateKeyFile != "" && ft.ClientAssertionFile != "" && !keySignsGrant:
		p.add(tk+".client_assertion_file", "set either private_key_file (assertions signed here) or client_assertion_file (written by the platform), not both")
	}
	if ft.ClientAssertionFile != "" && !method.Assertion {
		p.add(tk+".client_assertion_file", "goes with auth_method: private_key_jwt; set it, or remove client_assertion_file")
	}
	signs := method.Secret == grant.SecretSigns || ft.PrivateKeyFile != "" && keyUsed
	for _, k := range []struct{ name, value string }{{"key_id", ft.KeyID}, {"signing_alg", ft.SigningAlg}, {"assertion_audience", ft.AssertionAudience}} {
		if k.value != "" && !signs {
			p.add(tk+"."+k.name, "describes the assertions authproxy signs (auth_method: client_secret_jwt or private_key_jwt with private_key_file); remove it")
		}
	}
	if ft.SigningAlg != "" {
		p.oneOf(tk+".signing_alg", ft.SigningAlg, signingAlgs...)
		if method.Secret == grant.SecretSigns && !strings.HasPrefix(ft.SigningAlg, "HS") {
			p.add(tk+".signing_alg", "client_secret_jwt signs with the client secret: write HS256 (the default), HS384 or HS512")
		}
	}
	if ft.AssertionAudience != "" {
		p.url(tk+".assertion_audience", ft.AssertionAudience)
	}
	t.TLS = p.tls(tk+".tls", fileUpstreamTLS{CAFile: ft.TLS.CAFile, CertFile: ft.TLS.CertFile, KeyFile: ft.TLS.KeyFile}, dir)
	if t.TLS != (TLS{}) && strings.HasPrefix(t.URL, "http:") {
		// Not quoted: a URL's query may hold a credential.
		p.add(tk+".tls", "is for an https token url, and url is http: write an https:// url, or remove tls")
	}
	if method.ClientCertificate && ft.TLS.CertFile == "" {
		p.required(tk+".tls.cert_file", nil, "tls_client_auth presents a client certificate: write tls.cert_file and tls.key_file (PEM), e.g. the files cert-manager writes")
	}
}

// grantSettings checks the keys of the grants other than client
// credentials and refresh tokens, and audience and resource.
func (p *Problems) grantSettings(tk string, t *Token, ft fileToken, dir string) {
	only := func(grant, key, value string) {
		if value != "" && t.GrantType != grant {
			p.add(tk+"."+key, "goes with grant_type: %s; remove it, or set that grant", grant)
		}
	}
	only(grantJWTBearer, "assertion_file", ft.AssertionFile)
	for _, k := range []struct{ name, value string }{{"subject_token_file", ft.SubjectTokenFile}, {"subject_token_type", ft.SubjectTokenType},
		{"actor_token_file", ft.ActorTokenFile}, {"actor_token_type", ft.ActorTokenType}, {"requested_token_type", ft.RequestedTokenType}} {
		only(grantTokenExchange, k.name, k.value)
	}
	only(grantPassword, "username", ft.Username)
	only(grantPassword, "password", ft.Password)
	only(grantPassword, "password_file", ft.PasswordFile)
	switch t.GrantType {
	case grantJWTBearer:
		t.AssertionFile = absPath(ft.AssertionFile, dir)
	case grantTokenExchange:
		t.SubjectTokenFile, t.ActorTokenFile = absPath(ft.SubjectTokenFile, dir), absPath(ft.ActorTokenFile, dir)
		t.SubjectTokenType = orDefault(ft.SubjectTokenType, tokenTypeJWT)
		t.RequestedTokenType = ft.RequestedTokenType
		switch {
		case ft.ActorTokenFile != "":
			t.ActorTokenType = orDefault(ft.ActorTokenType, tokenTypeJWT)
		case ft.ActorTokenType != "":
			p.add(tk+".actor_token_type", "goes with actor_token_file (RFC 8693 2.1); set it, or remove actor_token_type")
		}
		for _, k := range []struct{ name, value string }{{"subject_token_type", t.SubjectTokenType}, {"actor_token_type", t.ActorTokenType}, {"requested_token_type", t.RequestedTokenType}} {
			if k.value != "" && !strings.Contains(k.value, ":") {
				p.add(tk+"."+k.name, "%q is not a token type URI; write e.g. %s or urn:ietf:params:oauth:token-type:access_token", k.value, tokenTypeJWT)
			}
		}
	case grantPassword:
		t.Username = ft.Username
		if ft.Username == "" {
			p.required(tk+".username", nil, "required for grant_type: password; write the user's name, or ${ENV_VAR}")
		}
		t.Password = p.secretValue(tk, "password", ft.Password, ft.PasswordFile, dir, true)
	}
	g := grant.Grants[t.GrantType]
	if g.Assertion && ft.AssertionFile == "" && ft.PrivateKeyFile == "" {
		p.required(tk+".assertion_file", []string{tk + ".private_key_file"}, "the jwt-bearer grant presents an assertion: write assertion_file (one the platform writes), or private_key_file to sign one")
	}
	if g.SubjectToken && ft.SubjectTokenFile == "" {
		p.required(tk+".subject_token_file", nil, "required for token exchange: the file the platform writes its token to, e.g. /var/run/secrets/tokens/token")
	}
	t.Audience, t.Resource = ft.Audience, ft.Resource
	for k := range ft.Params {
		if lk := strings.ToLower(k); lk == "audience" && len(ft.Audience) > 0 || lk == "resource" && len(ft.Resource) > 0 {
			p.add(tk+".params."+k, "is also set as token.%s; keep one (token.%s may list several)", lk, lk)
		}
	}
	for _, r := range ft.Resource {
		// RFC 8707 2: an absolute URI without a fragment.
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
			p.add(tk+".resource", "%q is not an absolute URI without a #fragment; write e.g. https://api.example.com/", r)
		}
	}
}
