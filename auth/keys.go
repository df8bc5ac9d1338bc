package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/authproxy/authproxy/internal/filekind"
)

// SigningAlg is a JWS algorithm (RFC 7518 3.1) for a client assertion.
type SigningAlg string

// The algorithms a client assertion may be signed with. The first of each
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

// minRSABits is RFC 7518 3.3's and 3.5's floor for RS* and PS* keys.
const minRSABits = 2048

// maxKeyFileSize bounds what is read from a key or certificate file: a
// PEM key is a few KiB, and a wrong path (a log, a device) must not be
// read whole into memory.
const maxKeyFileSize = 1 << 20

// ErrKey marks a private key that cannot be used: unreadable, not PEM,
// encrypted, of an unsupported type, or not fitting its signing_alg. The
// message says what is wrong and what to write instead; it never holds
// key material. Test with errors.Is.
var ErrKey = errors.New("unusable private key")

func keyError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrKey, fmt.Sprintf(format, args...))
}

// ReadPrivateKey reads a PEM private key file; see ParsePrivateKey. Its
// errors name the file.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, keyError("read %s: %v", path, unwrapPath(err))
	}
	defer clear(b) // the key bytes are not needed once parsed
	key, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKey reads the first private key in PEM: PKCS#8 ("PRIVATE
// KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"), holding an
// RSA key of 2048 bits or more, an EC P-256 or P-384 key, or an Ed25519
// key. Certificates and EC parameters before the key are skipped, so a
// file holding a certificate and its key works.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, keyError("no PEM private key found; the file must hold a block such as -----BEGIN PRIVATE KEY----- (PKCS#8), -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----")
		}
		switch block.Type {
		case "CERTIFICATE", "EC PARAMETERS", "TRUSTED CERTIFICATE":
			continue
		case "ENCRYPTED PRIVATE KEY":
			return nil, keyError("the key is encrypted; write it unencrypted, for example: openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-plain.pem")
		case "PUBLIC KEY", "RSA PUBLIC KEY":
			return nil, keyError("the file holds a public key; private_key_file needs the private key (the public one is registered with the provider)")
		}
		if _, ok := block.Headers["Proc-Type"]; ok {
			return nil, keyError("the key is encrypted (Proc-Type header); write it unencrypted, for example: openssl pkey -in key.pem -out key-plain.pem")
		}
		key, err := parseKeyBlock(block)
		if err != nil {
			return nil, err
		}
		if err := supportedKey(key); err != nil {
			return nil, err
		}
		return key, nil
	}
}

// parseKeyBlock parses one PEM block by its type. The x509 errors it
// wraps describe ASN.1 structure (tags, lengths), never the key's bytes.
func parseKeyBlock(block *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, keyError("PEM block %q is not a private key; want PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC1)", block.Type)
	}
	if err != nil {
		return nil, keyError("PEM block %q does not parse: %v", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, keyError("PEM block %q holds a %T, which cannot sign", block.Type, key)
	}
	// x509 returns ed25519.PrivateKey by value; keep one form.
	if k, ok := signer.(*ed25519.PrivateKey); ok {
		signer = *k
	}
	return signer, nil
}

func supportedKey(key crypto.Signer) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return keyError("%s is too short: RFC 7518 requires %d bits or more; make a new one: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048", describeKey(key), minRSABits)
		}
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return keyError("%s is not supported; use P-256 (ES256) or P-384 (ES384)", describeKey(key))
		}
	case ed25519.PrivateKey:
	default:
		return keyError("%s is not supported; use an RSA, EC P-256, EC P-384 or Ed25519 key", describeKey(key))
	}
	return nil
}

// describeKey names a key's type and size for messages: "RSA 2048-bit
// key", "EC P-256 key", "Ed25519 key".
func describeKey(key crypto.Signer) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d-bit key", k.N.BitLen())
	case *ecdsa.PrivateKey:
		return "EC " + k.Curve.Params().Name + " key"
	case ed25519.PrivateKey:
		return "Ed25519 key"
	default:
		return fmt.Sprintf("%T key", key)
	}
}

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
		return "", supportedKey(key)
	}
	return algs[0], nil
}

// CheckSigningAlg says whether alg can sign with key, and if not, which
// algorithms would.
func CheckSigningAlg(key crypto.Signer, alg SigningAlg) error {
	algs := algsFor(key)
	if len(algs) == 0 {
		return supportedKey(key)
	}
	if slices.Contains(algs, alg) {
		return nil
	}
	if isHMAC(alg) {
		return keyError("signing_alg %s signs with the client secret (client_secret_jwt), not a private key; for this %s write signing_alg: %s, or leave it out", alg, describeKey(key), algs[0])
	}
	want := string(algs[0])
	if _, ok := key.(*rsa.PrivateKey); ok {
		want = "RS256 or PS256"
	}
	return keyError("signing_alg %q does not fit the %s; write %s, or leave signing_alg out for %s", alg, describeKey(key), want, algs[0])
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

// CheckKeyFileMode returns an error naming the file when a key file can be
// read by its group or by others: a private key should be readable by
// authproxy's user alone (chmod 600). A config check shows it as a warning.
func CheckKeyFileMode(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return keyError("stat %s: %v", path, unwrapPath(err))
	}
	if perm := info.Mode().Perm(); perm&0o044 != 0 {
		// Risky rather than unusable: not ErrKey.
		return fmt.Errorf("%s can be read by %s (mode %04o); make it readable by its owner alone: chmod 600 %s", path, readers(perm), perm, path)
	}
	return nil
}

func readers(perm fs.FileMode) string {
	var who []string
	if perm&0o040 != 0 {
		who = append(who, "its group")
	}
	if perm&0o004 != 0 {
		who = append(who, "others")
	}
	return strings.Join(who, " and ")
}

// readSmallFile reads a regular file of at most maxKeyFileSize bytes.
// Anything else is refused before it is opened: opening a named pipe
// blocks until a writer comes, beyond any timeout, and a device may never
// end.
func readSmallFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		if info.IsDir() {
			return nil, errors.New("is a directory")
		}
		return nil, fmt.Errorf("not a regular file (%s)", filekind.Of(info.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileSize {
		clear(b)
		return nil, fmt.Errorf("larger than %d bytes, too large for a key, certificate or token", maxKeyFileSize)
	}
	return b, nil
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
