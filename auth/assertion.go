package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/authproxy/authproxy/pki"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a minted assertion is valid: long enough
// for one request and its clock skew, short enough that a captured one is
// soon useless. The server's replay check holds each jti this long.
const AssertionLifetime = 60 * time.Second

// An AssertionSource gives the client assertion for one token request.
// It is asked again for every request and every retry, so that each
// carries a fresh jti (or the platform's latest token). Implementations
// are safe for concurrent use.
type AssertionSource interface {
	Assertion() (string, error)
}

var (
	_ AssertionSource = (*SignedAssertion)(nil)
	_ AssertionSource = AssertionFile("")
)

// AssertionConfig says how to mint RFC 7523 client assertions. Exactly one
// of Key (private_key_jwt) and Secret (client_secret_jwt) is set.
type AssertionConfig struct {
	// ClientID is both iss and sub. Required.
	ClientID string
	// Audience is aud; empty means TokenURL, which RFC 7523 3 allows and
	// every provider we know accepts.
	Audience string
	// TokenURL is the token endpoint; required when Audience is empty.
	TokenURL string
	// Key signs private_key_jwt assertions; see pki.ReadPrivateKey.
	Key crypto.Signer
	// Secret signs client_secret_jwt assertions with HMAC.
	Secret string
	// Alg defaults to DefaultSigningAlg(Key), or HS256 with a Secret.
	Alg SigningAlg
	// KeyID is the JWS kid header, which the provider uses to pick the
	// key among those registered; empty sends none.
	KeyID string
	// Certificate, when set, is the certificate registered for Key (as
	// Entra ID does): its SHA-256 and SHA-1 thumbprints are sent as the
	// x5t#S256 and x5t headers (RFC 7515 4.1.8, 4.1.7).
	Certificate *x509.Certificate
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SignedAssertion mints a new assertion on every call: iss = sub =
// ClientID, aud, a random jti, iat = nbf = now and exp = now + 60 s. It
// keeps nothing it minted.
type SignedAssertion struct {
	signer   jose.Signer
	clientID string
	audience string
	now      func() time.Time
}

// NewSignedAssertion checks cfg and builds the signer.
func NewSignedAssertion(cfg AssertionConfig) (*SignedAssertion, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("client assertion: client_id is required (it is the iss and sub)")
	}
	aud := cfg.Audience
	if aud == "" {
		aud = cfg.TokenURL
	}
	if aud == "" {
		return nil, errors.New("client assertion: no audience; set assertion_audience or the token URL")
	}
	key, alg, err := assertionKey(cfg)
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if cfg.KeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), cfg.KeyID)
	}
	if c := cfg.Certificate; c != nil {
		s256, s1 := sha256.Sum256(c.Raw), sha1.Sum(c.Raw)
		opts = opts.WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(s256[:])).
			WithHeader("x5t", base64.RawURLEncoding.EncodeToString(s1[:]))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		// go-jose's messages name the algorithm and key type, not the key.
		return nil, fmt.Errorf("client assertion: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &SignedAssertion{signer: signer, clientID: cfg.ClientID, audience: aud, now: now}, nil
}

// assertionKey picks the key and algorithm, and checks that they fit.
func assertionKey(cfg AssertionConfig) (any, SigningAlg, error) {
	switch {
	case cfg.Key != nil && cfg.Secret != "":
		return nil, "", errors.New("client assertion: both a private key and a client secret; private_key_jwt signs with the key, client_secret_jwt with the secret")
	case cfg.Key != nil:
		alg := cfg.Alg
		if alg == "" {
			var err error
			if alg, err = DefaultSigningAlg(cfg.Key); err != nil {
				return nil, "", err
			}
		}
		if err := CheckSigningAlg(cfg.Key, alg); err != nil {
			return nil, "", &SettingError{Setting: SettingSigningAlg, Err: err}
		}
		return cfg.Key, alg, nil
	case cfg.Secret != "":
		alg := cfg.Alg
		if alg == "" {
			alg = HS256
		}
		if err := CheckSecretAlg(alg, len(cfg.Secret)); err != nil {
			return nil, "", fmt.Errorf("client assertion: %w", &SettingError{Setting: SettingClientSecret, Err: err})
		}
		return []byte(cfg.Secret), alg, nil
	default:
		return nil, "", errors.New("client assertion: no private key (private_key_jwt) and no client secret (client_secret_jwt) to sign with")
	}
}

// Assertion mints a new signed assertion.
func (a *SignedAssertion) Assertion() (string, error) {
	now := a.now()
	jti := rand.Text() // 128 random bits: never repeats while a server remembers it
	iat := jwt.NewNumericDate(now)
	claims := jwt.Claims{
		Issuer:    a.clientID,
		Subject:   a.clientID,
		Audience:  jwt.Audience{a.audience},
		ID:        jti,
		IssuedAt:  iat,
		NotBefore: iat, // Entra ID requires nbf
		Expiry:    jwt.NewNumericDate(now.Add(AssertionLifetime)),
	}
	s, err := jwt.Signed(a.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return s, nil
}

// AssertionFile is a file holding a JWT that the platform writes and
// rotates: a Kubernetes projected service-account token, a SPIFFE
// JWT-SVID. It is read anew on every call, because the platform replaces
// it before it expires and a token read at start would go stale.
type AssertionFile string

// Assertion reads the file and returns its content without surrounding
// whitespace.
func (f AssertionFile) Assertion() (string, error) {
	tok, err := ReadTokenFile(string(f))
	if err != nil {
		return "", fmt.Errorf("assertion: %w", err)
	}
	if strings.Count(tok, ".") != 2 {
		return "", fmt.Errorf("assertion: %w: %s does not hold a JWT (three dot-separated parts)", ErrTokenFile, string(f))
	}
	return tok, nil
}

// ErrTokenFile marks a token file (client assertion, subject or actor
// token) that cannot be used: unreadable or empty. Test with errors.Is.
var ErrTokenFile = errors.New("unusable token file")

// ReadTokenFile reads a token the platform writes to a file (an assertion,
// a subject or actor token for token exchange), trimmed of surrounding
// whitespace. Its errors name the file, never its content.
func ReadTokenFile(path string) (string, error) {
	b, err := pki.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: read %s: %v", ErrTokenFile, path, unwrapPath(err))
	}
	defer clear(b) // only the string returned, which the caller drops, holds it
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty; the platform has not written the token yet, or the path is wrong", ErrTokenFile, path)
	}
	return tok, nil
}

// unwrapPath drops the *PathError wrapper whose message repeats the path
// the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
