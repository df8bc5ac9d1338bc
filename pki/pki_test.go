package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCA(t *testing.T, hosts ...string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	if _, _, err := WriteCA(dir, hosts, time.Now()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWriteCAKeyIsOwnersAloneAndNeverOverwritten(t *testing.T) {
	dir := writeCA(t, "api.example.com")
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %04o, want 0600", fi.Mode().Perm())
	}
	if _, _, err := WriteCA(dir, []string{"api.example.com"}, time.Now()); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second WriteCA: %v, want a refusal to overwrite", err)
	}
	ca, err := LoadCA(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.PermittedDNSDomainsCritical || len(ca.Cert.ExcludedIPRanges) != 2 || !ca.Cert.MaxPathLenZero {
		t.Errorf("constraints: critical %v, excluded IPs %v, max path len zero %v", ca.Cert.PermittedDNSDomainsCritical, ca.Cert.ExcludedIPRanges, ca.Cert.MaxPathLenZero)
	}
}

func TestLoadCARefusesAKeyOthersCanRead(t *testing.T) {
	dir := writeCA(t, "api.example.com")
	key := filepath.Join(dir, KeyFileName)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o644} {
		os.Chmod(key, mode)
		if _, err := LoadCA(filepath.Join(dir, CertFileName), key); !errors.Is(err, ErrKeyReadable) {
			t.Errorf("mode %04o: %v, want ErrKeyReadable", mode, err)
		}
	}
}

// An error of the key file is marked ErrCAKeyFile, whatever it is; one of
// the certificate is not.
func TestLoadCAMarksTheKeyFilesErrors(t *testing.T) {
	dir := writeCA(t, "api.example.com")
	cert, key := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	notAKey := filepath.Join(dir, "not-a-key.pem")
	if err := os.WriteFile(notAKey, []byte("no key here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, keyFile := range []string{notAKey, filepath.Join(dir, "missing.pem")} {
		if _, err := LoadCA(cert, keyFile); !errors.Is(err, ErrCAKeyFile) {
			t.Errorf("key %s: %v, want ErrCAKeyFile", keyFile, err)
		}
	}
	if _, err := LoadCA(notAKey, key); err == nil || errors.Is(err, ErrCAKeyFile) {
		t.Errorf("a certificate file without a certificate: %v, want an error not marked ErrCAKeyFile", err)
	}
}

// A file over 1 MiB where the CA's certificate should be is refused,
// not read whole: a CA is a few KiB.
func TestLoadCARefusesAFileOver1MiB(t *testing.T) {
	dir := writeCA(t, "api.example.com")
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(big, filepath.Join(dir, KeyFileName)); err == nil || !strings.Contains(err.Error(), big) {
		t.Errorf("got %v, want a refusal naming %s", err, big)
	}
}

func TestPermits(t *testing.T) {
	dir := writeCA(t, "api.example.com", ".svc.example")
	ca, err := LoadCA(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	for host, ok := range map[string]bool{
		"api.example.com": true, "v2.api.example.com": true, "a.svc.example": true,
		"svc.example": false, "example.com": false, "evilapi.example.com": false, "api.example.com.evil": false, "bank.com": false,
	} {
		if err := ca.Permits(host); (err == nil) != ok {
			t.Errorf("Permits(%q) = %v, want ok %v", host, err, ok)
		}
	}
	unconstrained := &x509.Certificate{}
	if err := Permits(unconstrained, "api.example.com"); err == nil || !strings.Contains(err.Error(), "no name constraints") {
		t.Errorf("a CA without constraints: %v", err)
	}
}

// A leaf for a permitted host verifies against the CA; a certificate the
// key signs for any other host does not, whoever holds the key.
func TestMintedLeafVerifiesOnlyForPermittedHosts(t *testing.T) {
	dir := writeCA(t, "api.example.com")
	ca, err := LoadCA(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(ca, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	leaf, err := m.Certificate("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "api.example.com"}); err != nil {
		t.Errorf("minted leaf does not verify: %v", err)
	}
	if _, err := m.Certificate("bank.com"); err == nil {
		t.Error("minted a leaf for a host outside the constraints")
	}
	// Sign one for bank.com by hand, as a thief of the key would.
	thief := &Minter{ca: &CA{Cert: ca.Cert, key: ca.key}, key: m.key}
	thief.ca.Cert = withoutConstraints(ca.Cert)
	cert, err := thief.mint("bank.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "bank.com"}); err == nil {
		t.Error("a leaf for bank.com signed by the CA key verifies: the constraints do not hold")
	}
}

func withoutConstraints(c *x509.Certificate) *x509.Certificate {
	cp := *c
	cp.PermittedDNSDomains = []string{""} // permits anything, for mint's own check
	return &cp
}

func TestMinterCachesWithABoundAndRenewsBeforeExpiry(t *testing.T) {
	dir := writeCA(t, "example.com")
	ca, err := LoadCA(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m, err := NewMinter(ca, func() time.Time { return now }, 2)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := m.Certificate("a.example.com")
	if a2, _ := m.Certificate("a.example.com"); a2 != a1 {
		t.Error("second call minted again")
	}
	m.Certificate("b.example.com")
	m.Certificate("c.example.com")
	if n := m.Cached(); n != 2 {
		t.Errorf("cache holds %d, want its bound 2", n)
	}
	if a3, _ := m.Certificate("a.example.com"); a3 == a1 {
		t.Error("the evicted leaf came back")
	}
	b1, _ := m.Certificate("b.example.com")
	now = now.Add(LeafLifetime * 2 / 3)
	if b2, _ := m.Certificate("b.example.com"); b2 == b1 || !b2.Leaf.NotAfter.After(b1.Leaf.NotAfter) {
		t.Error("a leaf with a third of its life left was not renewed")
	}
	if got := b1.Leaf.NotAfter.Sub(b1.Leaf.NotBefore); got > LeafLifetime+10*time.Minute {
		t.Errorf("leaf lifetime %s", got)
	}
}

// An operator's CA constrained to DNS names alone can still, if its key
// leaks, impersonate any site reached by IP address (a certificate with
// an IP SAN), and non-critical constraints are ignored by clients that
// do not know them: neither is taken.
func TestPermitsRefusesConstraintsThatLeaveSitesOpen(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	makeCA := func(tmpl *x509.Certificate) *x509.Certificate {
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(1), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dnsOnly := makeCA(&x509.Certificate{PermittedDNSDomainsCritical: true, PermittedDNSDomains: []string{"api.example.com"}})
	// What the thief of its key could do: a certificate for 10.0.0.1.
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		dnsOnly, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	roots := x509.NewCertPool()
	roots.AddCert(dnsOnly)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.1"}); err != nil {
		t.Fatalf("the premise: an IP certificate from a DNS-only CA does not verify: %v", err)
	}
	for name, ca := range map[string]*x509.Certificate{
		"DNS names only": dnsOnly,
		"not critical": makeCA(&x509.Certificate{PermittedDNSDomains: []string{"api.example.com"},
			ExcludedIPRanges: []*net.IPNet{{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, {IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}}),
		"IPv4 excluded only": makeCA(&x509.Certificate{PermittedDNSDomainsCritical: true, PermittedDNSDomains: []string{"api.example.com"},
			ExcludedIPRanges: []*net.IPNet{{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}}),
	} {
		if err := Permits(ca, "api.example.com"); err == nil {
			t.Errorf("%s: permitted", name)
		}
	}
	// Those ca create makes, and one that permits some addresses only.
	ok := makeCA(&x509.Certificate{PermittedDNSDomainsCritical: true, PermittedDNSDomains: []string{"api.example.com"},
		PermittedIPRanges: []*net.IPNet{{IP: net.ParseIP("192.0.2.0"), Mask: net.CIDRMask(24, 32)}}})
	if err := Permits(ok, "api.example.com"); err != nil {
		t.Errorf("a CA permitting one IP range: %v", err)
	}
	dir := writeCA(t, "api.example.com")
	made, err := ReadCertificate(filepath.Join(dir, CertFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := Permits(made, "api.example.com"); err != nil {
		t.Errorf("ca create's CA: %v", err)
	}
}
