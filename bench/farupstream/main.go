// Command farupstream is the far API of the bench's -far mode: the fake
// API and token endpoint of upstream.go, served over TLS, run by the bench
// inside a network namespace of its own behind an emulated round trip
// (see bench/farnet_linux.go). It answers /size/N with N bytes, only to a
// request with an Authorization header, and POST /token with a token.
//
// With -http2 it offers HTTP/2 through ALPN, as most public APIs do;
// without, HTTP/1.1 only.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to serve on (inside the namespace)")
	cert := flag.String("cert", "", "certificate (PEM)")
	key := flag.String("key", "", "its key (PEM)")
	http2 := flag.Bool("http2", true, "offer HTTP/2 through ALPN")
	tls12 := flag.Bool("tls12", false, "speak TLS 1.2 at most (a full handshake takes two round trips, a resumed one one)")
	connRequests := flag.Int64("conn-requests", 0, "close each HTTP/1.1 connection after this many requests, as many APIs' servers do (nginx: keepalive_requests); 0: never")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "farupstream:", err)
		os.Exit(2)
	}
	var grants atomic.Int64
	payload := bytes.Repeat([]byte("x"), 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"far-%d","token_type":"Bearer","expires_in":3600}`, grants.Add(1))
	})
	mux.HandleFunc("/size/{n}", func(w http.ResponseWriter, r *http.Request) {
		if n, ok := r.Context().Value(connCount{}).(*atomic.Int64); ok && *connRequests > 0 && n.Add(1)%*connRequests == 0 {
			w.Header().Set("Connection", "close")
		}
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.Copy(io.Discard, r.Body)
		size, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(payload[:min(size, len(payload))])
	})
	// The bench's readiness probe connects without a handshake: no log.
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}},
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connCount{}, new(atomic.Int64))
		}}
	if *tls12 {
		srv.TLSConfig.MaxVersion = tls.VersionTLS12
	}
	if !*http2 {
		// A non-nil, empty TLSNextProto turns HTTP/2 off.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	if err := srv.ListenAndServeTLS("", ""); err != nil {
		fmt.Fprintln(os.Stderr, "farupstream:", err)
		os.Exit(1)
	}
}

// connCount is the context key of a connection's request counter.
type connCount struct{}
