// Command tlsbareproxy is the forward-proxy scenarios' baseline: a plain
// TLS-terminating Go proxy, the least one does that serves a client over
// TLS and attaches a token. It terminates TLS with a fixed certificate
// (-cert, -key) and forwards with httputil.ReverseProxy and a fixed
// Authorization header, with bench/bareproxy's upstream transport
// settings (a clone of http.DefaultTransport with MaxIdleConnsPerHost
// 256, MaxIdleConns 1024 and ResponseHeaderTimeout), its 32 KiB pooled
// copy buffers and its server limits. It has no CONNECT, no certificate
// minting, no access log, metrics hooks, token cache or replay: what
// authproxy's forward proxy costs beyond it is what the bench measures.
//
// It serves Go's runtime metrics on -admin, as bareproxy does, so that
// its allocations are read the same way as authproxy's.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
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
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve the proxy on, over TLS")
	admin := flag.String("admin", "127.0.0.1:9091", "address to serve /metrics on")
	target := flag.String("target", "", "upstream base URL")
	token := flag.String("token", "fixed-token", "bearer token to attach")
	certFile := flag.String("cert", "", "the TLS certificate (PEM) to serve")
	keyFile := flag.String("key", "", "its key (PEM)")
	timeout := flag.Duration("upstream-timeout", 60*time.Second, "ResponseHeaderTimeout, as authproxy's upstream_timeout")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "tlsbareproxy: -target %q is not an http URL\n", *target)
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsbareproxy:", err)
		os.Exit(2)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = *timeout
	tr.MaxIdleConnsPerHost = 256
	tr.MaxIdleConns = 1024
	authorization := "Bearer " + *token
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set("Authorization", authorization)
		},
		Transport:  tr,
		BufferPool: copyBuffers,
	}
	srv := &http.Server{Addr: *listen, Handler: proxy,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	adminSrv := &http.Server{Addr: *admin, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := make(chan error, 2)
	serve := map[*http.Server]func() error{srv: func() error { return srv.ListenAndServeTLS("", "") }, adminSrv: adminSrv.ListenAndServe}
	for _, listenAndServe := range serve {
		go func() {
			if err := listenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				failed <- err
			}
		}()
	}
	select {
	case err := <-failed:
		fmt.Fprintln(os.Stderr, "tlsbareproxy:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	adminSrv.Shutdown(shutdownCtx)
}

// copyBuffers is bareproxy's (proxy/proxy.go's) pool of array pointers,
// so that Put allocates nothing.
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
