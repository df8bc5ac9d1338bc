// Command bareproxy is the bench's baseline: the least a Go proxy that
// attaches a token does, built the way authproxy's proxying is built
// where that is not per-request work of ours. It has the same 32 KiB
// pooled copy buffers as proxy/proxy.go, the same upstream transport
// settings as app/program.go (a clone of http.DefaultTransport with
// MaxIdleConnsPerHost 256, MaxIdleConns 1024 and ResponseHeaderTimeout,
// request bodies written through the pooled buffers as
// proxy.WithPooledCopy does),
// the same server limits as authproxy's defaults, and a fixed
// Authorization header. It has no access log, metrics hooks, token cache,
// idle timeout, request-body limit or replay: those are what the bench
// measures the cost of.
//
// With -cert and -key it serves TLS with that certificate instead: the
// forward-proxy scenarios' baseline, a plain TLS-terminating proxy (no
// CONNECT, no certificate minting).
//
// It serves Go's runtime metrics (go_memstats_mallocs_total among them)
// on -admin, from the same Prometheus collector authproxy uses, so both
// processes' allocations are read the same way.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve the proxy on")
	admin := flag.String("admin", "127.0.0.1:9091", "address to serve /metrics on")
	target := flag.String("target", "", "upstream base URL")
	token := flag.String("token", "fixed-token", "bearer token to attach")
	certFile := flag.String("cert", "", "a TLS certificate (PEM) to serve with, over TLS; with -key")
	keyFile := flag.String("key", "", "its key (PEM)")
	timeout := flag.Duration("upstream-timeout", 60*time.Second, "ResponseHeaderTimeout, as authproxy's upstream_timeout")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "bareproxy: -target %q is not an http URL\n", *target)
		os.Exit(2)
	}
	var tlsConfig *tls.Config
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bareproxy:", err)
			os.Exit(2)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = *timeout
	tr.MaxIdleConnsPerHost = 256
	tr.MaxIdleConns = 1024
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &pooledCopyConn{c}, nil
	}
	authorization := "Bearer " + *token
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set("Authorization", authorization)
		},
		Transport:  tr,
		BufferPool: copyBuffers,
	}
	// authproxy's defaults for limits.read_header_timeout, idle_timeout
	// and max_header_bytes.
	srv := &http.Server{Addr: *listen, Handler: proxy,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		TLSConfig: tlsConfig}
	serveProxy := srv.ListenAndServe
	if tlsConfig != nil {
		serveProxy = func() error { return srv.ListenAndServeTLS("", "") }
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	adminSrv := &http.Server{Addr: *admin, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := make(chan error, 2)
	for _, serve := range []func() error{serveProxy, adminSrv.ListenAndServe} {
		go func() {
			if err := serve(); !errors.Is(err, http.ErrServerClosed) {
				failed <- err
			}
		}()
	}
	select {
	case err := <-failed:
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	adminSrv.Shutdown(shutdownCtx)
}

// copyBuffers and bufferPool are proxy/proxy.go's: a pool of array
// pointers, so that Put allocates nothing.
var copyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[copyBufferSize]byte); ok {
		return b[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) >= copyBufferSize {
		p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}

// pooledCopyConn is proxy/upstreamconn.go's: a dialled connection whose
// ReadFrom copies request bodies through copyBuffers.
type pooledCopyConn struct{ net.Conn }

func (c *pooledCopyConn) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	return io.CopyBuffer((*connWriter)(c), r, buf)
}

func (c *pooledCopyConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

type connWriter pooledCopyConn
