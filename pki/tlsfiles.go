package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTLSFiles marks a certificate, key or CA file that cannot be used.
// Its message names the file and never holds key material. Test with
// errors.Is.
var ErrTLSFiles = errors.New("unusable TLS file")

func tlsFilesError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTLSFiles, fmt.Sprintf(format, args...))
}

// TLSFiles names the files of a TLS client: a private CA to trust and a
// client certificate to present (RFC 8705 tls_client_auth, or an upstream
// that requires mutual TLS). There is deliberately no way to skip
// verification.
type TLSFiles struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's;
	// empty trusts the system's roots. It is read once.
	CAFile string
	// CertFile and KeyFile are the client certificate (PEM, leaf first,
	// then intermediates) and its private key; both or neither. They are
	// reloaded when they change on disk.
	CertFile, KeyFile string
	// ServerName overrides the name the server's certificate is checked
	// against; empty uses the URL's host.
	ServerName string
	// CheckEvery is how often, at most, the certificate files are looked
	// at (one stat each) before a handshake or a request; zero means
	// every second. Now is the clock; nil means time.Now.
	CheckEvery time.Duration
	Now        func() time.Time
	// OnRefused, if set, is called when changed files are still not
	// taken at the next look (a key that does not match, a half-written
	// pair, a file gone): the last good pair stays in use. A rotation
	// caught half way is not said, as it is whole at the next look; a pair
	// that stays wrong is said once per content of the files.
	OnRefused func(error)
}

// IsZero says whether f names no file and no server name: a client
// that trusts the system's roots and presents no certificate.
func (f TLSFiles) IsZero() bool {
	return f.CAFile == "" && f.CertFile == "" && f.KeyFile == "" && f.ServerName == ""
}

// NewTLSConfig builds a client tls.Config from f. With a client
// certificate, the returned *ClientCertificate is the one its
// GetClientCertificate uses; wrap the transport with its Transport so that
// a rotated certificate is used from the next request on.
func NewTLSConfig(f TLSFiles) (*tls.Config, *ClientCertificate, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		b, err := ReadFile(f.CAFile)
		if err != nil {
			return nil, nil, tlsFilesError("read ca_file %s: %v", f.CAFile, unwrapPath(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, nil, tlsFilesError("ca_file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, nil, tlsFilesError("cert_file and key_file go together; set both or neither")
	}
	if f.CertFile == "" {
		return cfg, nil, nil
	}
	cc, err := NewClientCertificate(f)
	if err != nil {
		return nil, nil, err
	}
	cfg.GetClientCertificate = cc.GetClientCertificate
	return cfg, cc, nil
}

// ClientCertificate is a certificate and key pair read from two files and
// read again when either changes, because cert-manager and similar tools
// replace them before they expire. The two files are written one after
// the other, so a new pair is used only once both parse and the key
// matches the certificate; until then the last good pair is kept.
//
// A change is found by reading both files (a few KiB) at most once per
// CheckEvery and comparing their digests with the pair in use, not by
// their modification times: Linux stamps files with a clock that ticks
// every few milliseconds, so a rewrite of the same size in the same tick
// would look unchanged.
type ClientCertificate struct {
	certFile, keyFile string
	every             time.Duration
	now               func() time.Time

	current    atomic.Pointer[tls.Certificate]
	generation atomic.Uint64 // counts the pairs loaded
	nextCheck  atomic.Int64  // unix nanoseconds; before it, no look at the files

	onRefused func(error)

	mu     sync.Mutex // serialises reloads and guards the fields below
	digest [sha256.Size]byte
	// seen is what the files held when last refused, said what was said of
	// with onRefused (a digest, or the read error).
	seen, said string
}

// NewClientCertificate reads f.CertFile and f.KeyFile, which must hold a
// matching pair now.
func NewClientCertificate(f TLSFiles) (*ClientCertificate, error) {
	c := &ClientCertificate{certFile: f.CertFile, keyFile: f.KeyFile, every: f.CheckEvery, now: f.Now, onRefused: f.OnRefused}
	if c.every <= 0 {
		c.every = time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	c.nextCheck.Store(c.now().Add(c.every).UnixNano())
	return c, nil
}

// GetClientCertificate is tls.Config's hook: the current pair, after a
// look at the files if CheckEvery has passed. A pair that fails to load
// is not an error here: the last good one is presented, and Reload
// reports the failure to whoever asks.
func (c *ClientCertificate) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c.maybeReload()
	return c.current.Load(), nil
}

// Certificate is the pair in use.
func (c *ClientCertificate) Certificate() *tls.Certificate { return c.current.Load() }

// maybeReload looks at the files at most once per CheckEvery, and says
// whether a new pair was loaded.
func (c *ClientCertificate) maybeReload() bool {
	now := c.now().UnixNano()
	next := c.nextCheck.Load()
	if now < next || !c.nextCheck.CompareAndSwap(next, now+int64(c.every)) {
		return false // checked recently, or another caller is checking
	}
	changed, _ := c.reload()
	return changed
}

// Reload looks at the files now and loads them if they changed. It says
// whether a new pair is in use, and why a changed pair was not taken.
func (c *ClientCertificate) Reload() (changed bool, err error) { return c.reload() }

func (c *ClientCertificate) reload() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed, content, err := c.load()
	switch {
	case err == nil || c.current.Load() == nil || content == c.said:
	case content == c.seen: // wrong at two looks: no rotation under way
		c.said = content
		if c.onRefused != nil {
			c.onRefused(err)
		}
	default:
		c.seen = content
	}
	return changed, err
}

// load reads the files and takes the pair if it changed and is whole.
// content names what the files held (a digest, or the read error), for
// saying a refusal once.
func (c *ClientCertificate) load() (changed bool, content string, err error) {
	certPEM, err := ReadFile(c.certFile)
	if err != nil {
		err = tlsFilesError("read cert_file %s: %v", c.certFile, unwrapPath(err))
		return false, err.Error(), err
	}
	keyPEM, err := ReadFile(c.keyFile)
	if err != nil {
		err = tlsFilesError("read key_file %s: %v", c.keyFile, unwrapPath(err))
		return false, err.Error(), err
	}
	defer clear(keyPEM)
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0}) // a boundary, so that bytes moved between the files count as a change
	h.Write(keyPEM)
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	content = hex.EncodeToString(digest[:])
	if c.current.Load() != nil && digest == c.digest {
		return false, content, nil
	}
	// tls.X509KeyPair skips a block cut short at the end of a file, so a
	// chain caught mid-write would pass with its whole leaf alone.
	for _, f := range []struct {
		key, path string
		pem       []byte
	}{{"cert_file", c.certFile, certPEM}, {"key_file", c.keyFile, keyPEM}} {
		if halfWrittenPEM(f.pem) {
			return false, content, tlsFilesError("%s %s ends in a PEM block without its END line: half-written, or cut short", f.key, f.path)
		}
	}
	// tls.X509KeyPair's errors describe the PEM blocks and whether the
	// key matches, never the key itself.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil && encryptedPEM(keyPEM) {
		return false, content, tlsFilesError("key_file %s is encrypted; write it unencrypted, for example: openssl pkey -in key.pem -out key-plain.pem", c.keyFile)
	}
	if err != nil {
		// Probably half-written: keep the last good pair, and look again
		// at the next check.
		return false, content, tlsFilesError("cert_file %s and key_file %s: %v", c.certFile, c.keyFile, err)
	}
	c.current.Store(&pair)
	c.generation.Add(1)
	c.digest = digest
	return true, content, nil
}

// halfWrittenPEM says whether b holds a BEGIN line that pem.Decode
// finds no block for: a block whose END line is not written yet.
func halfWrittenPEM(b []byte) bool {
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return bytes.Contains(rest, []byte("-----BEGIN"))
		}
	}
}

// encryptedPEM says whether b holds an encrypted private key: PKCS#8's
// ENCRYPTED PRIVATE KEY, or a legacy block with a Proc-Type header.
func encryptedPEM(b []byte) bool {
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return false
		}
		if _, ok := block.Headers["Proc-Type"]; ok || block.Type == "ENCRYPTED PRIVATE KEY" {
			return true
		}
	}
}

// Transport wraps base so that a rotated certificate is presented from the
// next request on. A kept-alive connection goes on presenting the pair of
// its handshake, and a connection busy when the pair changes returns to
// the idle pool afterwards, so closing idle connections is not enough:
// once a new pair is loaded (by this transport's look at the files or by
// a handshake's), requests go to a fresh clone of base, and the previous
// clone's idle connections are closed. Requests in flight finish on their
// connections, which are then never reused and close at the clone's
// IdleConnTimeout (90 seconds if base sets none).
func (c *ClientCertificate) Transport(base *http.Transport) http.RoundTripper {
	if base.IdleConnTimeout == 0 {
		base = base.Clone()
		base.IdleConnTimeout = 90 * time.Second
	}
	t := &certReloadTransport{cert: c}
	t.current.Store(&generationTransport{gen: c.generation.Load(), tr: base})
	return t
}

type certReloadTransport struct {
	cert    *ClientCertificate
	mu      sync.Mutex // serialises the switch to a new clone
	current atomic.Pointer[generationTransport]
}

// generationTransport is the transport whose connections present the
// pair of generation gen (or an older one, for connections made before).
type generationTransport struct {
	gen uint64
	tr  *http.Transport
}

func (t *certReloadTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.cert.maybeReload()
	return t.transport().RoundTrip(req)
}

func (t *certReloadTransport) transport() *http.Transport {
	gen, cur := t.cert.generation.Load(), t.current.Load()
	if cur.gen == gen {
		return cur.tr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur = t.current.Load(); cur.gen != gen {
		next := &generationTransport{gen: gen, tr: cur.tr.Clone()}
		t.current.Store(next)
		cur.tr.CloseIdleConnections()
		cur = next
	}
	return cur.tr
}

// CloseIdleConnections closes the current transport's idle connections,
// for http.Client.CloseIdleConnections.
func (t *certReloadTransport) CloseIdleConnections() { t.current.Load().tr.CloseIdleConnections() }

// CheckValidity says whether cert, read from path, is valid at now: a
// server refuses a client certificate that has expired or is not valid
// yet, and Entra ID an assertion whose x5t names one. The proxy itself
// starts with such a certificate, since cert-manager may be about to
// replace it; authproxy check reports it.
func CheckValidity(path string, cert *x509.Certificate, now time.Time) error {
	switch {
	case cert == nil:
		return nil
	case now.After(cert.NotAfter):
		return fmt.Errorf("the certificate in %s (subject %q) expired at %s; renew it (with cert-manager, see the Certificate's status)",
			path, cert.Subject.String(), cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		return fmt.Errorf("the certificate in %s (subject %q) is not valid before %s; is this machine's clock right?",
			path, cert.Subject.String(), cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
