package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/testpki"
)

// The key fixtures, as testpki makes them.
var (
	testKeys         = testpki.Keys
	pemOf            = testpki.PEM
	pkcs8            = testpki.PKCS8
	sec1             = testpki.SEC1
	assertNoMaterial = testpki.AssertNoMaterial
)

func TestParsePrivateKeyFormats(t *testing.T) {
	k := testKeys()
	rsaKey, p256, p384 := k["rsa"].(*rsa.PrivateKey), k["p256"].(*ecdsa.PrivateKey), k["p384"].(*ecdsa.PrivateKey)
	// openssl ecparam -genkey writes the curve's parameters before the key.
	params := pemOf(t, "EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	cert := pemOf(t, "CERTIFICATE", []byte("not parsed, only skipped"))
	for _, tc := range []struct {
		name string
		pem  []byte
		want crypto.Signer
	}{
		{"rsa pkcs8", pkcs8(t, rsaKey), rsaKey},
		{"rsa pkcs1", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey},
		{"p256 pkcs8", pkcs8(t, p256), p256},
		{"p256 sec1", sec1(t, p256), p256},
		{"p256 sec1 after EC PARAMETERS", append(params, sec1(t, p256)...), p256},
		{"p384 sec1", sec1(t, p384), p384},
		{"p384 pkcs8", pkcs8(t, p384), p384},
		{"ed25519 pkcs8", pkcs8(t, k["ed25519"]), k["ed25519"]},
		{"certificate then key", append(cert, pkcs8(t, p256)...), p256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePrivateKey(tc.pem)
			if err != nil {
				t.Fatal(err)
			}
			if eq, ok := got.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !eq.Equal(tc.want) {
				t.Fatalf("parsed %T, not the key written", got)
			}
			if err := CheckKey(got); err != nil {
				t.Fatalf("a parsed key is not one to sign with: %v", err)
			}
		})
	}
}

func TestParsePrivateKeyRefusals(t *testing.T) {
	k := testKeys()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(k["p256"].Public())
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3},
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"}})
	der, _ := x509.MarshalPKCS8PrivateKey(k["p256"])
	for _, tc := range []struct {
		name, pem, want string
	}{
		{"empty", "", "no PEM private key found"},
		{"DER, not PEM", string(der), "no PEM private key found"},
		{"public key", string(pemOf(t, "PUBLIC KEY", pubDER)), "holds a public key"},
		{"pkcs8 encrypted", string(pemOf(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3})), "openssl pkcs8 -topk8 -nocrypt"},
		{"legacy encrypted", string(encrypted), "encrypted (Proc-Type header)"},
		{"rsa 1024", string(pkcs8(t, small)), "RSA 1024-bit key is too short"},
		{"p521", string(sec1(t, p521)), "EC P-521 key is not supported; use P-256 (ES256) or P-384 (ES384)"},
		{"other block", string(pemOf(t, "DSA PRIVATE KEY", []byte{1})), `PEM block "DSA PRIVATE KEY" is not a private key`},
		{"pkcs1 label on an EC key", string(pemOf(t, "RSA PRIVATE KEY", der)), `PEM block "RSA PRIVATE KEY" does not parse`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKey([]byte(tc.pem))
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrKey containing %q", err, tc.want)
			}
		})
	}
}

// A key that does not parse must not end up in the error: the message is
// logged by the config check and may be shown to whoever runs it.
func TestParseErrorsHoldNoKeyMaterial(t *testing.T) {
	good := pkcs8(t, testKeys()["rsa"])
	block, _ := pem.Decode(good)
	for _, cut := range []int{10, len(block.Bytes) / 2, len(block.Bytes) - 3} {
		for _, typ := range []string{"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"} {
			broken := pemOf(t, typ, block.Bytes[:cut])
			_, err := ParsePrivateKey(broken)
			if err == nil {
				t.Fatalf("%s cut at %d parsed", typ, cut)
			}
			assertNoMaterial(t, err.Error(), block.Bytes)
		}
	}
}

// assertNoMaterial fails when msg holds any 8-byte run of secret, raw or
// in base64, base64url or hex.

func TestReadPrivateKeyNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	if _, err := ReadPrivateKey(missing); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("hello"), 0o600)
	if _, err := ReadPrivateKey(bad); !errors.Is(err, ErrKey) || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := ReadPrivateKey(dir); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory: %v", err)
	}
	big := filepath.Join(dir, "big.pem")
	os.WriteFile(big, make([]byte, maxKeyFileSize+1), 0o600)
	if _, err := ReadPrivateKey(big); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("huge file: %v", err)
	}
	good := filepath.Join(dir, "key.pem")
	os.WriteFile(good, pkcs8(t, testKeys()["p256"]), 0o600)
	if _, err := ReadPrivateKey(good); err != nil {
		t.Fatal(err)
	}
}

func TestCheckKeyFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(path, []byte("x"), 0o600)
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "can be read by its group (mode 0640); make it readable by its owner alone: chmod 600 " + path},
		{0o644, "can be read by its group and others (mode 0644)"},
		{0o604, "can be read by others (mode 0604)"},
	} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := CheckKeyFileMode(path)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("mode %04o: %v, want %q", tc.mode, err, tc.want)
		}
	}
}

func FuzzParsePrivateKey(f *testing.F) {
	k := testKeys()
	f.Add(pkcs8(f, k["p256"]))
	f.Add(sec1(f, k["p384"].(*ecdsa.PrivateKey)))
	f.Add(pkcs8(f, k["ed25519"]))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := ParsePrivateKey(b)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("error without ErrKey: %v", err)
			}
			return
		}
		if err := CheckKey(key); err != nil {
			t.Fatalf("parsed a key that cannot sign: %v", err)
		}
	})
}
