package pki

import (
	"crypto/x509"
	"errors"
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
