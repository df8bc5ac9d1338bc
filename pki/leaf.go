package pki

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"time"
)

// Defaults of a Minter.
const (
	// LeafLifetime is how long a minted certificate is valid: a day, so
	// that one copied out of a client's memory is soon worthless.
	LeafLifetime = 24 * time.Hour
	// DefaultMaxLeaves bounds the cache; the proxy mints only for the
	// hosts its config names, so this is a backstop.
	DefaultMaxLeaves = 1024
)

// Minter issues leaf certificates for hosts from a CA, once per host:
// they are cached, at most MaxLeaves of them, and made anew when less
// than a third of their lifetime is left. It is safe for concurrent use.
type Minter struct {
	ca  *CA
	key *ecdsa.PrivateKey // one key for every leaf: a signature, not a key generation, per host
	now func() time.Time
	max int

	mu     sync.Mutex
	leaves map[string]*list.Element // of *leafEntry
	order  *list.List               // least recently used at the back
}

type leafEntry struct {
	host string
	cert *tls.Certificate
}

// NewMinter makes a Minter for ca. now is its clock (nil: time.Now);
// maxLeaves bounds its cache (<= 0: DefaultMaxLeaves).
func NewMinter(ca *CA, now func() time.Time, maxLeaves int) (*Minter, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if maxLeaves <= 0 {
		maxLeaves = DefaultMaxLeaves
	}
	return &Minter{ca: ca, key: key, now: now, max: maxLeaves, leaves: map[string]*list.Element{}, order: list.New()}, nil
}

// Certificate returns the leaf for host, a DNS name, minting it if none
// is cached or the cached one is due. Minting is done under the lock: a
// burst of tunnels to a new host signs once.
func (m *Minter) Certificate(host string) (*tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if el, ok := m.leaves[host]; ok {
		e := el.Value.(*leafEntry)
		if now.Before(e.cert.Leaf.NotAfter.Add(-LeafLifetime / 3)) {
			m.order.MoveToFront(el)
			return e.cert, nil
		}
		m.order.Remove(el)
		delete(m.leaves, host)
	}
	cert, err := m.mint(host, now)
	if err != nil {
		return nil, err
	}
	m.leaves[host] = m.order.PushFront(&leafEntry{host: host, cert: cert})
	for m.order.Len() > m.max {
		oldest := m.order.Back()
		m.order.Remove(oldest)
		delete(m.leaves, oldest.Value.(*leafEntry).host)
	}
	return cert, nil
}

// Cached is the number of leaves in the cache.
func (m *Minter) Cached() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

func (m *Minter) mint(host string, now time.Time) (*tls.Certificate, error) {
	if err := m.ca.Permits(host); err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(LeafLifetime)
	if notAfter.After(m.ca.Cert.NotAfter) {
		notAfter = m.ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    now.Add(-5 * time.Minute), // a client's clock a little behind
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca.Cert, m.key.Public(), m.ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, m.ca.Cert.Raw}, PrivateKey: m.key, Leaf: leaf}, nil
}
