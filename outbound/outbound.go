// Package outbound builds the HTTP transports authproxy sends through:
// to the upstreams (whichever way a request came in, reverse or forward
// proxy) and to the token endpoints. It is the one place where a
// transport's dialing, TLS, timeouts and connection pool are set, so that
// a new setting, or a new kind of outbound connection, is written once.
//
// It is also the one place a request sent out is traced (trace.go): a
// client span and the traceparent it sends, which auth (token requests)
// and proxy (upstream attempts) wrap their transports in, each adding its
// own attributes through SpanTransport's hooks.
//
// It imports only pki (for the TLS files) and OpenTelemetry's API, so
// that auth, proxy and app can all use it.
package outbound

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/authproxy/authproxy/pki"
)

// DialFunc dials a connection, as http.Transport.DialContext does.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Settings say how one outbound transport is built. The zero value is a
// clone of http.DefaultTransport: HTTP/2 where the server offers it
// through ALPN, the proxy named by the environment (HTTPS_PROXY,
// NO_PROXY), the system's roots, no client certificate.
type Settings struct {
	// ResponseHeaderTimeout bounds the wait for a response's headers
	// once the request is written; zero waits as long as the request's
	// context lets it.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConns and MaxIdleConnsPerHost size the pool of idle
	// connections; zero keeps http.DefaultTransport's (100 in all, 2 per
	// host). MaxConnsPerHost caps the connections to one host, past which
	// requests wait for one; zero is no cap.
	MaxIdleConns, MaxIdleConnsPerHost, MaxConnsPerHost int
	// WrapDial, if set, wraps the dialer (as proxy.WithPooledCopy does);
	// nil dials as http.DefaultTransport does.
	WrapDial func(DialFunc) DialFunc
	// TLS is the CA trusted, the name checked and the client certificate
	// presented, read again when it is rotated (see pki.NewTLSConfig);
	// the zero value trusts the system's roots and presents none.
	TLS pki.TLSFiles
	// SessionCacheSize, if more than zero, keeps that many TLS sessions
	// for resumption, so that a connection opened after the pool ran dry
	// resumes a session instead of a full handshake (net/http keeps none
	// by default). It is not used with a client certificate: a resumed
	// session carries the certificate it was made with (RFC 8446, 2.2),
	// and every connection must show the current one in a full handshake,
	// so that a rotated one is what the server sees from the next
	// connection on.
	SessionCacheSize int
}

// New builds the transport s describes. With a client certificate, it is
// the certificate's transport (pki.ClientCertificate.Transport), which
// moves to fresh connections when the certificate is rotated; otherwise
// an *http.Transport. Its errors are pki's, naming the file.
func New(s Settings) (http.RoundTripper, error) {
	if s.TLS.IsZero() {
		return transport(s, nil), nil
	}
	cfg, cert, err := pki.NewTLSConfig(s.TLS)
	if err != nil {
		return nil, err
	}
	tr := transport(s, cfg)
	if cert != nil {
		return cert.Transport(tr), nil
	}
	return tr, nil
}

// Transport is New for settings without TLS files, which cannot fail:
// s.TLS is not read.
func Transport(s Settings) *http.Transport { return transport(s, nil) }

// transport is a clone of http.DefaultTransport with s's settings and
// cfg as its TLS configuration (nil: the default).
func transport(s Settings, cfg *tls.Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = s.ResponseHeaderTimeout
	if s.MaxIdleConns > 0 {
		tr.MaxIdleConns = s.MaxIdleConns
	}
	if s.MaxIdleConnsPerHost > 0 {
		tr.MaxIdleConnsPerHost = s.MaxIdleConnsPerHost
	}
	tr.MaxConnsPerHost = s.MaxConnsPerHost
	if s.WrapDial != nil {
		tr.DialContext = s.WrapDial(tr.DialContext)
	}
	tr.TLSClientConfig = cfg
	if s.SessionCacheSize > 0 && (cfg == nil || cfg.GetClientCertificate == nil && len(cfg.Certificates) == 0) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(s.SessionCacheSize)
	}
	return tr
}
