package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files a new CA is written to, in the directory given.
const (
	CertFileName = "ca.pem"
	KeyFileName  = "ca-key.pem"
)

// CALifetime is how long a CA made by NewCA is valid: long enough not to
// redistribute it often, short enough that a forgotten one dies.
const CALifetime = 2 * 365 * 24 * time.Hour

// NewCA makes a CA whose name constraints (critical) permit only hosts
// and the names below them, and exclude every IP address: if its key
// leaked, it could impersonate no other site. It returns the certificate
// and the key in PEM.
func NewCA(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("name at least one host the CA may issue for")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:                serial,
		Subject:                     pkix.Name{CommonName: "authproxy forward-proxy CA", Organization: []string{"authproxy"}},
		NotBefore:                   now.Add(-time.Hour),
		NotAfter:                    now.Add(CALifetime),
		IsCA:                        true,
		BasicConstraintsValid:       true,
		MaxPathLenZero:              true, // no intermediate CA below it
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         hosts,
		ExcludedIPRanges: []*net.IPNet{
			{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WriteCA makes a CA for hosts in dir (made if missing, mode 0700): the
// certificate as ca.pem (0644) and the key as ca-key.pem (0600). It
// never overwrites a key: a CA already handed to clients would be lost.
func WriteCA(dir string, hosts []string, now time.Time) (certPath, keyPath string, err error) {
	certPEM, keyPEM, err := NewCA(hosts, now)
	if err != nil {
		return "", "", err
	}
	defer clear(keyPEM)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists; remove it first, or choose another directory (the clients trusting the old CA must then be given the new one)", p)
		}
	}
	kf, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := kf.Write(keyPEM); err != nil {
		kf.Close()
		return "", "", err
	}
	if err := kf.Close(); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}
