// Package pki reads and checks the files of keys and certificates: the
// private keys that sign client assertions and DPoP proofs (keys.go),
// the CA and client certificate of a TLS client, read again when they
// are rotated (tlsfiles.go), and the forward proxy's certificate
// authority: loading the operator's CA, checking that its name
// constraints permit the hosts the proxy serves, making a new one
// (authproxy ca create), and minting the short-lived leaf certificates
// a tunnel is served with.
//
// It is a leaf: it imports nothing of authproxy's, so that auth (for the
// token endpoint), config (for its checks), app (for the wiring and
// authproxy check) and tests can all use it. Nothing here ever puts key
// material in an error or a log.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// CA is an operator's certificate authority, loaded for minting.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// ErrKeyReadable marks a CA key file that its group or others can read:
// whoever reads it can impersonate every host the CA permits.
var ErrKeyReadable = errors.New("the CA key is readable by others")

// ErrCAKeyFile marks an error of LoadCA that is its key file's (its
// mode, reading it, a key in it), so that a caller can name that file's
// setting rather than the certificate's.
var ErrCAKeyFile = errors.New("the CA key file")

// keyFileError is an error of the CA's key file: its text is err's, and
// it is both err and ErrCAKeyFile.
type keyFileError struct{ err error }

func (e keyFileError) Error() string   { return e.err.Error() }
func (e keyFileError) Unwrap() []error { return []error{e.err, ErrCAKeyFile} }

// CheckKeyMode refuses a key file that anyone but its owner can read or
// write (mode & 0o077).
func CheckKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot read it: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; make it its owner's alone: chmod 600 %s", ErrKeyReadable, path, perm, path)
	}
	return nil
}

// LoadCA reads a CA certificate and its private key (PEM), refusing a
// key file that others can read, a certificate that is not a CA, and a
// key that is not the certificate's.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cert, err := ReadCertificate(certFile)
	if err != nil {
		return nil, err
	}
	if err := CheckKeyMode(keyFile); err != nil {
		return nil, keyFileError{err}
	}
	b, err := readCAFile(keyFile)
	if err != nil {
		return nil, keyFileError{err}
	}
	defer clear(b)
	key, err := parseCAKey(b)
	if err != nil {
		return nil, keyFileError{fmt.Errorf("%s: %w", keyFile, err)}
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("%s is not a CA certificate (basic constraints CA:TRUE); make one with: authproxy ca create DIR --hosts ...", certFile)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s may not sign certificates (its key usage lacks keyCertSign)", certFile)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
	}
	return &CA{Cert: cert, key: key}, nil
}

// ReadCertificate reads the first certificate of a PEM file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	b, err := readCAFile(path)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: the certificate does not parse: %v", path, err)
			}
			return cert, nil
		}
	}
}

// Permits says whether the CA's name constraints allow a certificate for
// host, a DNS name. A CA whose constraints leave other sites open is
// refused too: if its key leaked, it could impersonate them to whoever
// trusts it. That is one without permitted DNS names, one whose
// constraints are not critical (a client that does not know them would
// ignore them), and one that neither permits some IP ranges nor
// excludes all of them (DNS constraints do not bind a certificate for an
// address).
func (ca *CA) Permits(host string) error { return Permits(ca.Cert, host) }

// Permits is CA.Permits for a certificate alone.
func Permits(cert *x509.Certificate, host string) error {
	const remake = "; make a constrained one with: authproxy ca create DIR --hosts "
	switch {
	case len(cert.PermittedDNSDomains) == 0:
		return errors.New("the CA has no name constraints: with its key, anyone could impersonate any site to the apps that trust it" + remake + host)
	case !cert.PermittedDNSDomainsCritical:
		return errors.New("the CA's name constraints are not marked critical: a client that does not know them would take a certificate for any site from it" + remake + host)
	case len(cert.PermittedIPRanges) == 0 && !(excludesAll(cert.ExcludedIPRanges, 32) && excludesAll(cert.ExcludedIPRanges, 128)):
		return errors.New("the CA's name constraints leave IP addresses open: with its key, anyone could impersonate any site reached by address" + remake + host)
	}
	for _, d := range cert.ExcludedDNSDomains {
		if domainMatch(host, d) {
			return fmt.Errorf("the CA's name constraints exclude %s (excluded: %s)", host, d)
		}
	}
	for _, d := range cert.PermittedDNSDomains {
		if domainMatch(host, d) {
			return nil
		}
	}
	return fmt.Errorf("the CA's name constraints do not permit %s (permitted: %s); make one that does with: authproxy ca create DIR --hosts %s",
		host, strings.Join(cert.PermittedDNSDomains, ", "), host)
}

// excludesAll says whether ranges hold every address of the family
// whose masks have bits bits (32: IPv4, 128: IPv6).
func excludesAll(ranges []*net.IPNet, bits int) bool {
	for _, r := range ranges {
		if ones, b := r.Mask.Size(); ones == 0 && b == bits {
			return true
		}
	}
	return false
}

// domainMatch is RFC 5280 4.2.1.10 for DNS names: "example.com" matches
// itself and every name below it, ".example.com" only the names below.
func domainMatch(host, constraint string) bool {
	host, constraint = strings.ToLower(host), strings.ToLower(constraint)
	if constraint == "" {
		return true
	}
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(host, constraint)
	}
	return host == constraint || strings.HasSuffix(host, "."+constraint)
}

// readCAFile reads the CA's certificate or key through ReadFile, as
// every key and certificate is read: a regular file of at most 1 MiB. A
// named pipe is refused rather than opened: opening one blocks until a
// writer comes, and authproxy check, serve and ca create with it.
func readCAFile(path string) ([]byte, error) {
	b, err := ReadFile(path)
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr):
		return nil, fmt.Errorf("cannot read it: %w", err)
	case err != nil:
		return nil, fmt.Errorf("read %s: %v", path, err)
	}
	return b, nil
}

// parseCAKey reads the first private key in PEM: PKCS#8, PKCS#1 or
// SEC1, through decodeKeyBlock. Unlike ParsePrivateKey it skips blocks
// of any other type and takes a key of any size. Its errors describe the
// structure, never the key's bytes.
func parseCAKey(pemBytes []byte) (crypto.Signer, error) {
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found (-----BEGIN PRIVATE KEY-----)")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the key is encrypted; write it unencrypted, mode 600")
		}
		key, err := decodeKeyBlock(block)
		if errors.Is(err, errNotKeyBlock) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %q does not parse: %v", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("PEM block %q holds a %T; use an EC, RSA or Ed25519 key", block.Type, key)
	}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
