package pki

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
	"io/fs"
	"os"
	"strings"
)

// minRSABits is RFC 7518 3.3's and 3.5's floor for RS* and PS* keys.
const minRSABits = 2048

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
	b, err := ReadFile(path)
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
		if err := CheckKey(key); err != nil {
			return nil, err
		}
		return key, nil
	}
}

// errNotKeyBlock says that a PEM block's type names no private key format.
var errNotKeyBlock = errors.New("not a private key block")

// decodeKeyBlock parses one PEM block by its type: PKCS#8, PKCS#1 or
// SEC1, and errNotKeyBlock for any other type. It is the one parser of
// private keys, for ParsePrivateKey and the CA's key alike; the x509
// errors it returns describe ASN.1 structure (tags, lengths), never the
// key's bytes.
func decodeKeyBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	return nil, errNotKeyBlock
}

// parseKeyBlock parses one PEM block of ParsePrivateKey's into a signer.
func parseKeyBlock(block *pem.Block) (crypto.Signer, error) {
	key, err := decodeKeyBlock(block)
	switch {
	case errors.Is(err, errNotKeyBlock):
		return nil, keyError("PEM block %q is not a private key; want PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC1)", block.Type)
	case err != nil:
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

// ReadKeyFile reads a private key file as ReadPrivateKey does, and the
// certificate in it, if there is one: the certificate registered for the
// key (Entra ID), whose thumbprints the assertions name. A certificate
// that is not the key's is an error, as the provider would refuse every
// assertion.
func ReadKeyFile(path string) (crypto.Signer, *x509.Certificate, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, nil, keyError("read %s: %v", path, unwrapPath(err))
	}
	defer clear(b) // the key bytes are not needed once parsed
	key, err := ParsePrivateKey(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return key, nil, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, keyError("%s: the certificate beside the key does not parse: %v", path, err)
		}
		pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(cert.PublicKey) {
			return nil, nil, keyError("%s: the certificate (subject %q) is not the key's; put the key's own certificate beside it, or none", path, cert.Subject.String())
		}
		return key, cert, nil
	}
}

// CheckKey says whether key is one a signature may be made with: an RSA
// key of 2048 bits or more, an EC P-256 or P-384 key, or an Ed25519 key.
func CheckKey(key crypto.Signer) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return keyError("%s is too short: RFC 7518 requires %d bits or more; make a new one: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048", DescribeKey(key), minRSABits)
		}
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return keyError("%s is not supported; use P-256 (ES256) or P-384 (ES384)", DescribeKey(key))
		}
	case ed25519.PrivateKey:
	default:
		return keyError("%s is not supported; use an RSA, EC P-256, EC P-384 or Ed25519 key", DescribeKey(key))
	}
	return nil
}

// DescribeKey names a key's type and size for messages: "RSA 2048-bit
// key", "EC P-256 key", "Ed25519 key".
func DescribeKey(key crypto.Signer) string {
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
