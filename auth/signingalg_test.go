package auth

import (
	"crypto"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/testpki"
	"github.com/authproxy/authproxy/pki"
)

// The key fixtures, as testpki makes them.
var (
	testKeys         = testpki.Keys
	pemOf            = testpki.PEM
	pkcs8            = testpki.PKCS8
	sec1             = testpki.SEC1
	assertNoMaterial = testpki.AssertNoMaterial
)

func TestDefaultSigningAlg(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  SigningAlg
	}{
		{"rsa", k["rsa"], RS256},
		{"p256", k["p256"], ES256},
		{"p384", k["p384"], ES384},
		{"ed25519", k["ed25519"], EdDSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := pki.ParsePrivateKey(pkcs8(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			alg, err := DefaultSigningAlg(parsed)
			if err != nil || alg != tc.alg {
				t.Fatalf("DefaultSigningAlg = %s, %v; want %s", alg, err, tc.alg)
			}
			if err := CheckSigningAlg(parsed, alg); err != nil {
				t.Fatalf("the default alg does not fit: %v", err)
			}
		})
	}
}

func TestCheckSigningAlg(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		key  string
		alg  SigningAlg
		want string // empty: fits
	}{
		{"rsa", PS256, ""},
		{"rsa", RS512, ""},
		{"rsa", ES256, `signing_alg "ES256" does not fit the RSA 2048-bit key; write RS256 or PS256, or leave signing_alg out for RS256`},
		{"p256", ES384, `signing_alg "ES384" does not fit the EC P-256 key; write ES256`},
		{"p384", ES256, `does not fit the EC P-384 key; write ES384`},
		{"ed25519", "Ed25519", `does not fit the Ed25519 key; write EdDSA`},
		{"p256", HS256, "signs with the client secret (client_secret_jwt), not a private key"},
		{"ed25519", "none", `signing_alg "none" does not fit`},
	} {
		err := CheckSigningAlg(k[tc.key], tc.alg)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s with %s: %v", tc.key, tc.alg, err)
			}
			continue
		}
		if !errors.Is(err, pki.ErrKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with %s: %v, want %q", tc.key, tc.alg, err, tc.want)
		}
	}
}

func TestCheckSecretAlg(t *testing.T) {
	for _, tc := range []struct {
		alg  SigningAlg
		n    int
		want string
	}{
		{HS256, 32, ""},
		{HS512, 64, ""},
		{HS256, 20, "the client secret is 20 bytes; HS256 needs 32 or more (RFC 7518 3.2): ask the provider for a longer secret, or use private_key_jwt"},
		{HS384, 40, "HS384 needs 48 or more (RFC 7518 3.2): write signing_alg: HS256"},
		{HS256, 0, "needs a client secret"},
		{RS256, 64, `signing_alg "RS256" does not fit client_secret_jwt`},
	} {
		err := CheckSecretAlg(tc.alg, tc.n)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckSecretAlg(%s, %d) = %v, want %q", tc.alg, tc.n, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
