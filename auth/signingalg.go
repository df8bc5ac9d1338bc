package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"

	"github.com/authproxy/authproxy/pki"
)

// SigningAlg is a JWS algorithm (RFC 7518 3.1) for a client assertion.
type SigningAlg string

// The algorithms a client assertion or a DPoP proof may be signed with. The first of each
// key type's list is its default.
const (
	RS256 SigningAlg = "RS256"
	RS384 SigningAlg = "RS384"
	RS512 SigningAlg = "RS512"
	PS256 SigningAlg = "PS256"
	PS384 SigningAlg = "PS384"
	PS512 SigningAlg = "PS512"
	ES256 SigningAlg = "ES256"
	ES384 SigningAlg = "ES384"
	EdDSA SigningAlg = "EdDSA"
	HS256 SigningAlg = "HS256"
	HS384 SigningAlg = "HS384"
	HS512 SigningAlg = "HS512"
)

// algsFor lists the algorithms that fit key, its default first.
func algsFor(key crypto.Signer) []SigningAlg {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return []SigningAlg{RS256, PS256, RS384, RS512, PS384, PS512}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return []SigningAlg{ES256}
		case elliptic.P384():
			return []SigningAlg{ES384}
		}
	case ed25519.PrivateKey:
		return []SigningAlg{EdDSA}
	}
	return nil
}

// DefaultSigningAlg is the algorithm used for key when signing_alg is not
// set: RS256 for RSA, ES256 for P-256, ES384 for P-384, EdDSA for Ed25519.
func DefaultSigningAlg(key crypto.Signer) (SigningAlg, error) {
	algs := algsFor(key)
	if len(algs) == 0 {
		return "", pki.CheckKey(key)
	}
	return algs[0], nil
}

// CheckSigningAlg says whether alg can sign with key, and if not, which
// algorithms would.
func CheckSigningAlg(key crypto.Signer, alg SigningAlg) error {
	algs := algsFor(key)
	if len(algs) == 0 {
		return pki.CheckKey(key)
	}
	if slices.Contains(algs, alg) {
		return nil
	}
	if isHMAC(alg) {
		return keyError("signing_alg %s signs with the client secret (client_secret_jwt), not a private key; for this %s write signing_alg: %s, or leave it out", alg, pki.DescribeKey(key), algs[0])
	}
	want := string(algs[0])
	if _, ok := key.(*rsa.PrivateKey); ok {
		want = "RS256 or PS256"
	}
	return keyError("signing_alg %q does not fit the %s; write %s, or leave signing_alg out for %s", alg, pki.DescribeKey(key), want, algs[0])
}

func isHMAC(alg SigningAlg) bool { return alg == HS256 || alg == HS384 || alg == HS512 }

// CheckSecretAlg says whether alg fits client_secret_jwt with a secret of
// secretLen bytes. RFC 7518 3.2 requires an HMAC key at least as long as
// the hash output (32 bytes for HS256), and go-jose refuses to sign with a
// shorter one: such a secret would fail every token request, so it is
// refused at start, with what would fit.
func CheckSecretAlg(alg SigningAlg, secretLen int) error {
	need := map[SigningAlg]int{HS256: 32, HS384: 48, HS512: 64}[alg]
	if need == 0 {
		return keyError("signing_alg %q does not fit client_secret_jwt, which signs with the client secret; write HS256 (the default), HS384 or HS512", alg)
	}
	if secretLen == 0 {
		return keyError("client_secret_jwt needs a client secret to sign with; set client_secret or client_secret_file")
	}
	if secretLen < need {
		fits := "ask the provider for a longer secret, or use private_key_jwt"
		if secretLen >= 32 {
			fits = "write signing_alg: HS256 (32 bytes or more), or ask the provider for a longer secret"
		}
		return fmt.Errorf("the client secret is %d bytes; %s needs %d or more (RFC 7518 3.2): %s", secretLen, alg, need, fits)
	}
	return nil
}

// keyError marks a signing_alg that does not fit its key as pki's
// unusable keys are marked, so that callers test both with one errors.Is.
func keyError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", pki.ErrKey, fmt.Sprintf(format, args...))
}
