package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/pki"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DPoPTokenType is the token_type of a token bound to a key (RFC 9449 5),
// and the Authorization scheme it is sent with (7.1).
const DPoPTokenType = "DPoP"

// DPoPKey proves possession of one private key (RFC 9449): it signs a
// proof for each HTTP request, to the token endpoint and to the resource
// server alike, and keeps the latest nonce each server gave (sections 8
// and 9). It is safe for concurrent use: signing takes no lock, and the
// nonces are read without one.
type DPoPKey struct {
	signer     jose.Signer
	alg        SigningAlg
	thumbprint string
	now        func() time.Time
	// nonces holds the latest DPoP-Nonce of each server, by origin
	// ("https://host:port"): a server's nonce is no use to another.
	nonces sync.Map // string -> string
}

// NewDPoPKey checks that alg fits key ("" picks the key's default, as
// for private_key_jwt: ES256 for P-256, ES384, EdDSA, RS256) and builds
// the signer. now is the clock of each proof's iat; nil means time.Now.
func NewDPoPKey(key crypto.Signer, alg SigningAlg, now func() time.Time) (*DPoPKey, error) {
	if err := pki.CheckKey(key); err != nil {
		return nil, err
	}
	if alg == "" {
		var err error
		if alg, err = DefaultSigningAlg(key); err != nil {
			return nil, err
		}
	}
	if err := CheckSigningAlg(key, alg); err != nil {
		return nil, err
	}
	// EmbedJWK puts the public key, and only it, in the jwk header (RFC
	// 9449 4.2); typ says what the JWT is, so that no other JWT of this
	// key can pass for a proof.
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	pub := jose.JSONWebKey{Key: key.Public()}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dpop: thumbprint of the %s: %w", pki.DescribeKey(key), err)
	}
	if now == nil {
		now = time.Now
	}
	return &DPoPKey{signer: signer, alg: alg, thumbprint: base64.RawURLEncoding.EncodeToString(sum), now: now}, nil
}

// ReadDPoPKey reads a PEM private key file (see pki.ReadPrivateKey) for
// NewDPoPKey. Its errors name the file, never the key; they are
// *SettingError, blaming DPoPKeyFile or DPoPSigningAlg.
func ReadDPoPKey(path string, alg SigningAlg, now func() time.Time) (*DPoPKey, error) {
	key, err := pki.ReadPrivateKey(path)
	if err != nil {
		return nil, &SettingError{Setting: SettingDPoPKeyFile, Err: err}
	}
	k, err := NewDPoPKey(key, alg, now)
	if err != nil {
		return nil, &SettingError{Setting: SettingDPoPSigningAlg, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return k, nil
}

// Thumbprint is the key's JWK SHA-256 thumbprint (RFC 7638), base64url:
// the cnf.jkt of the tokens bound to it. It is public.
func (k *DPoPKey) Thumbprint() string { return k.thumbprint }

// Alg is the proofs' signing algorithm.
func (k *DPoPKey) Alg() SigningAlg { return k.alg }

// String names the key by its thumbprint, so that a stray %v shows
// nothing of the private key.
func (k *DPoPKey) String() string { return "dpop key " + k.thumbprint }

// GoString is String, for %#v.
func (k *DPoPKey) GoString() string { return k.String() }

// dpopClaims are a proof's claims (RFC 9449 4.2).
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// Proof signs a new proof for one request: htm is its method, htu its URL
// without query and fragment, iat now, jti 128 random bits, nonce the
// latest one u's server gave (if any) and, with an access token (a
// request to a resource server), ath its SHA-256 hash. A proof is good
// for one request only: the server refuses a jti it has seen.
func (k *DPoPKey) Proof(method string, u *url.URL, accessToken string) (string, error) {
	c := dpopClaims{JTI: rand.Text(), HTM: method, HTU: HTU(u), IAT: k.now().Unix(), Nonce: k.Nonce(u)}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	s, err := jwt.Signed(k.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign dpop proof: %w", err)
	}
	return s, nil
}

// HTU is a proof's htu for u (RFC 9449 4.2): the URL without its query
// and fragment.
func HTU(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + u.Host + u.EscapedPath()
}

func origin(u *url.URL) string { return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) }

// Nonce is the latest nonce u's server gave; "" if none.
func (k *DPoPKey) Nonce(u *url.URL) string {
	if v, ok := k.nonces.Load(origin(u)); ok {
		return v.(string)
	}
	return ""
}

// SetNonce keeps nonce as u's server's latest; "" or a value that could
// not be sent back in a proof is ignored.
func (k *DPoPKey) SetNonce(u *url.URL, nonce string) {
	if nonce == "" || !headerSafe(nonce) || len(nonce) > maxNonceBytes {
		return
	}
	if old, ok := k.nonces.Load(origin(u)); ok && old.(string) == nonce {
		return // the common case: nothing to write
	}
	k.nonces.Store(origin(u), nonce)
}

// maxNonceBytes bounds a nonce kept: a server's nonce is a few dozen
// bytes, and one that is not must not grow every proof.
const maxNonceBytes = 1024

// ObserveNonce keeps the DPoP-Nonce header of any answer from u's server
// (RFC 9449 8.2, 9: a server may send a new one with any response).
func (k *DPoPKey) ObserveNonce(u *url.URL, h http.Header) {
	if v := h["Dpop-Nonce"]; len(v) > 0 {
		k.SetNonce(u, v[0])
	}
}

// errUseDPoPNonce is the error code of a server that wants a nonce in
// the proof (RFC 9449 8, 9).
const errUseDPoPNonce = "use_dpop_nonce"

// UsesNonceChallenge reports whether an upstream's answer asks for a new
// proof with the nonce it sends (RFC 9449 9): a 401 with a DPoP
// challenge whose error is use_dpop_nonce, and a DPoP-Nonce header.
func UsesNonceChallenge(status int, h http.Header) bool {
	if status != http.StatusUnauthorized || len(h["Dpop-Nonce"]) == 0 {
		return false
	}
	for _, v := range h["Www-Authenticate"] {
		if i := strings.Index(strings.ToLower(v), "dpop"); i >= 0 && strings.Contains(v[i:], errUseDPoPNonce) {
			return true
		}
	}
	return false
}

// checkBinding refuses a JWT access token bound to another key: its
// cnf.jkt (RFC 9449 6.1) must be the key's thumbprint. The payload is
// read, not verified (the client is not the token's audience and may not
// know the issuer's keys): this only catches a token the endpoint bound
// to another key, which every request would fail with. An opaque token,
// or a JWT without cnf, is taken as it is: only the resource server can
// tell.
func (k *DPoPKey) checkBinding(access string, status int) error {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Cnf.JKT == "" || claims.Cnf.JKT == k.thumbprint {
		return nil
	}
	return badResponse("status %d with an access token whose cnf.jkt %q names another key than token.dpop's (thumbprint %s): every proof would be refused (RFC 9449 6.1)",
		status, claims.Cnf.JKT, k.thumbprint)
}

// dpopExchange sends a token request with a proof, and once more with a
// new proof when the endpoint answers use_dpop_nonce with a nonce other
// than the one sent (RFC 9449 8): at most once, so that an endpoint that
// keeps asking cannot make it loop. The second attempt is built anew,
// with a new client assertion as well.
func (e tokenEndpoint) dpopExchange(ctx context.Context, grant [][2]string) (*Token, error) {
	u, err := url.Parse(e.url)
	if err != nil {
		return nil, fmt.Errorf("build token request: %w", err)
	}
	sent := e.dpop.Nonce(u)
	tok, err := e.exchangeOnce(ctx, grant)
	var re *RetrieveError
	if errors.As(err, &re) && re.ErrorCode == errUseDPoPNonce {
		if now := e.dpop.Nonce(u); now != "" && now != sent {
			return e.exchangeOnce(ctx, grant)
		}
	}
	return tok, err
}

// DPoPKey is the key the source's tokens are bound to; nil without DPoP.
func (c *Cache) DPoPKey() *DPoPKey { return c.dpop }

// dpopThumbprint is the thumbprint of DPoPKeyFile's key, for the
// Identity; "" without one. A key that cannot be read counts by its
// error, as fileDigest does: building the source says what is wrong.
func (s Settings) dpopThumbprint() string {
	if s.DPoPKeyFile == "" {
		return ""
	}
	key, err := pki.ReadPrivateKey(s.DPoPKeyFile)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	sum, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "unusable: " + err.Error()
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}
