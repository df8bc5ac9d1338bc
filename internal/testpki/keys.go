package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
)

// Keys are one private key of each kind a key file may hold, by name:
// "rsa" (2048 bits), "p256", "p384" and "ed25519". They are made once per
// test binary: RSA generation is slow.
var Keys = sync.OnceValue(func() map[string]crypto.Signer {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"rsa": rsa2048, "p256": p256, "p384": p384, "ed25519": ed}
})

// PEM encodes der as one PEM block of type typ.
func PEM(t testing.TB, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// PKCS8 is key in PEM, PKCS#8 ("PRIVATE KEY").
func PKCS8(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return PEM(t, "PRIVATE KEY", der)
}

// SEC1 is key in PEM, SEC1 ("EC PRIVATE KEY").
func SEC1(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return PEM(t, "EC PRIVATE KEY", der)
}

// AssertNoMaterial fails t if msg holds any 12 characters of secret, as
// it is or in base64 or hex: an error or a log line must name a key or a
// token, never show it.
func AssertNoMaterial(t *testing.T, msg string, secret []byte) {
	t.Helper()
	for _, enc := range encodings {
		e := enc(secret)
		for i := 0; i+12 <= len(e); i += 4 {
			if strings.Contains(msg, e[i:i+12]) {
				t.Fatalf("message holds secret material: %s", msg)
			}
		}
	}
}

var encodings = []func([]byte) string{
	func(b []byte) string { return string(b) },
	base64.StdEncoding.EncodeToString,
	base64.RawURLEncoding.EncodeToString,
	hex.EncodeToString,
}
