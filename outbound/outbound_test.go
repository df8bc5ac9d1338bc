package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/testpki"
	"github.com/authproxy/authproxy/pki"
)

func transportOf(t *testing.T, s Settings) *http.Transport {
	t.Helper()
	rt, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		t.Fatalf("New gave a %T, want *http.Transport", rt)
	}
	return tr
}

// The zero Settings are http.DefaultTransport's: HTTP/2 by ALPN, the
// proxy from the environment, its pool and timeouts, the system's roots.
func TestZeroSettingsAreTheDefaultTransports(t *testing.T) {
	def := http.DefaultTransport.(*http.Transport)
	for name, tr := range map[string]*http.Transport{"New": transportOf(t, Settings{}), "Transport": Transport(Settings{})} {
		if tr == def {
			t.Fatalf("%s: http.DefaultTransport itself, not a clone", name)
		}
		if tr.Proxy == nil || !tr.ForceAttemptHTTP2 || tr.DialContext == nil {
			t.Errorf("%s: Proxy set %v, ForceAttemptHTTP2 %v, DialContext set %v; want all", name, tr.Proxy != nil, tr.ForceAttemptHTTP2, tr.DialContext != nil)
		}
		if tr.MaxIdleConns != def.MaxIdleConns || tr.MaxIdleConnsPerHost != def.MaxIdleConnsPerHost || tr.MaxConnsPerHost != 0 ||
			tr.IdleConnTimeout != def.IdleConnTimeout || tr.TLSHandshakeTimeout != def.TLSHandshakeTimeout ||
			tr.ExpectContinueTimeout != def.ExpectContinueTimeout || tr.ResponseHeaderTimeout != 0 {
			t.Errorf("%s: pool or timeouts differ from http.DefaultTransport's: %+v", name, tr)
		}
		if tr.TLSClientConfig != nil {
			t.Errorf("%s: TLSClientConfig %+v, want none (the system's roots)", name, tr.TLSClientConfig)
		}
	}
}

// An upstream's settings are each set as written, its dial wrapped, and a
// session cache kept for resumption.
func TestSettingsAreSet(t *testing.T) {
	var wrapped bool
	dialed := errors.New("dialed through the wrapper")
	s := Settings{
		ResponseHeaderTimeout: 7 * time.Second,
		MaxIdleConns:          1024, MaxIdleConnsPerHost: 256, MaxConnsPerHost: 64,
		WrapDial: func(DialFunc) DialFunc {
			wrapped = true
			return func(context.Context, string, string) (net.Conn, error) { return nil, dialed }
		},
		SessionCacheSize: 16,
	}
	for name, tr := range map[string]*http.Transport{"New": transportOf(t, s), "Transport": Transport(s)} {
		if tr.ResponseHeaderTimeout != 7*time.Second || tr.MaxIdleConns != 1024 || tr.MaxIdleConnsPerHost != 256 || tr.MaxConnsPerHost != 64 {
			t.Errorf("%s: ResponseHeaderTimeout %s, MaxIdleConns %d, MaxIdleConnsPerHost %d, MaxConnsPerHost %d", name,
				tr.ResponseHeaderTimeout, tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost)
		}
		if _, err := tr.DialContext(context.Background(), "tcp", "127.0.0.1:1"); !wrapped || err != dialed {
			t.Errorf("%s: dial not through WrapDial: %v", name, err)
		}
		if tr.TLSClientConfig == nil || tr.TLSClientConfig.ClientSessionCache == nil {
			t.Errorf("%s: no TLS session cache", name)
		}
		if tr.Proxy == nil || !tr.ForceAttemptHTTP2 {
			t.Errorf("%s: lost the proxy from the environment or HTTP/2", name)
		}
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The TLS files are pki's: the CA trusted (TLS 1.2 at least), the name
// checked; with a client certificate, the certificate's transport, and no
// session cache, so that each connection shows the current certificate.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	tr := transportOf(t, Settings{TLS: pki.TLSFiles{CAFile: caFile, ServerName: "api.internal"}, SessionCacheSize: 16})
	cfg := tr.TLSClientConfig
	if cfg == nil || cfg.RootCAs == nil || cfg.ServerName != "api.internal" || cfg.MinVersion != tls.VersionTLS12 || cfg.ClientSessionCache == nil {
		t.Fatalf("TLS config %+v: want the CA, the server name, TLS 1.2 and a session cache", cfg)
	}
	if cfg.InsecureSkipVerify {
		t.Fatal("verification skipped")
	}

	pair := ca.Issue(t, testpki.Leaf{})
	files := pki.TLSFiles{CAFile: caFile, CertFile: writeFile(t, dir, "tls.crt", pair.CertPEM), KeyFile: writeFile(t, dir, "tls.key", pair.KeyPEM)}
	rt, err := New(Settings{TLS: files, SessionCacheSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.(*http.Transport); ok {
		t.Fatal("with a client certificate, a plain *http.Transport: a rotated certificate would not reach kept-alive connections")
	}
	if _, ok := rt.(interface{ CloseIdleConnections() }); !ok {
		t.Fatalf("%T cannot close its idle connections", rt)
	}

	if _, err := New(Settings{TLS: pki.TLSFiles{CAFile: filepath.Join(dir, "none.pem")}}); !errors.Is(err, pki.ErrTLSFiles) {
		t.Fatalf("a missing ca_file: %v, want pki.ErrTLSFiles", err)
	}
}

// With a client certificate, no connection resumes a TLS session: a
// resumed session carries the certificate it was made with, and a rotated
// one must be what the server sees from the next connection on.
func TestNoResumptionWithAClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	var resumed []bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resumed = append(resumed, r.TLS.DidResume)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Loopback(t).TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	srv.Config.SetKeepAlivesEnabled(false) // a new connection per request
	srv.StartTLS()
	defer srv.Close()
	pair := ca.Issue(t, testpki.Leaf{})
	files := pki.TLSFiles{CAFile: writeFile(t, dir, "ca.pem", ca.PEM), CertFile: writeFile(t, dir, "tls.crt", pair.CertPEM), KeyFile: writeFile(t, dir, "tls.key", pair.KeyPEM)}
	rt, err := New(Settings{TLS: files, SessionCacheSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	for range 2 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if len(resumed) != 2 || resumed[1] {
		t.Fatalf("resumed %v, want two full handshakes", resumed)
	}
}
