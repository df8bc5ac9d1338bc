package app

import (
	"net/http"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/outbound"
	"github.com/authproxy/authproxy/pki"
	"github.com/authproxy/authproxy/proxy"
	"github.com/sirupsen/logrus"
)

// Idle connections kept to one upstream. One upstream takes all of a
// busy app's traffic: keep enough idle connections to it that bursts do
// not reconnect, which against a far API costs a TCP and a TLS round trip
// each (bench -far).
const (
	upstreamIdleConnsPerHost = 256
	upstreamIdleConns        = 1024
)

// upstreamSessionCacheSize is how many TLS sessions are kept per upstream
// for resumption: enough for a burst of new connections to one API.
const upstreamSessionCacheSize = 256

// newUpstreamTransport builds the transport to one upstream, whichever
// way its requests come in (outbound.New: a clone of
// http.DefaultTransport, so HTTP/2 where the API offers it through ALPN,
// proxy settings from the environment): the upstream's timeout and TLS
// files, its client certificate read again when cert-manager replaces
// it, request bodies written through the proxy's pooled buffers, and a
// TLS session cache, so that a connection opened after the pool ran dry
// resumes a session instead of a full handshake. Past max_connections,
// requests wait for a connection.
func newUpstreamTransport(u config.Upstream, log logrus.FieldLogger) (http.RoundTripper, error) {
	f := tlsFiles(u.TLS)
	f.OnRefused = func(err error) {
		log.WithError(err).Warn("the upstream's client certificate files changed but cannot be used; the previous certificate is still presented")
	}
	return outbound.New(outbound.Settings{
		ResponseHeaderTimeout: u.Timeout,
		MaxIdleConnsPerHost:   upstreamIdleConnsPerHost,
		MaxIdleConns:          upstreamIdleConns,
		// Requests past upstreams.NAME.max_connections wait for a
		// connection instead of opening one each: every extra connection
		// holds buffers and two goroutines while it lives, and is closed
		// after its request when the idle pool is full.
		MaxConnsPerHost:  maxConnections(u.MaxConnections, cgroupMemoryLimit()),
		WrapDial:         proxy.WithPooledCopy,
		TLS:              f,
		SessionCacheSize: upstreamSessionCacheSize,
	})
}

// connectionsPerMiB sizes max_connections left out: a connection to the
// upstream with its request in flight holds buffers and two goroutines,
// and 256 of them with 1,000 clients fit in 64 MiB (bench -memory: 56 MiB
// peak); at least minAutoConnections, so a tiny limit still serves.
const (
	connectionsPerMiB  = 4
	minAutoConnections = 64
)

// maxConnections is the cap on connections to one upstream: the one
// configured, or, left out, one sized from the memory limit (bytes; 0:
// none, and then no cap, as before the setting existed).
func maxConnections(configured int, memoryLimit int64) int {
	if configured != config.MaxConnectionsAuto {
		return configured
	}
	if memoryLimit <= 0 {
		return 0
	}
	return max(minAutoConnections, int(memoryLimit>>20)*connectionsPerMiB)
}

// tlsFiles copies a TLS section of the config into pki's terms, for the
// token endpoint's and the upstream's transports (outbound.New).
func tlsFiles(t config.TLS) pki.TLSFiles {
	return pki.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
}
