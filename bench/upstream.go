package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// upstream is the fake API and token endpoint, served by the bench
// process on loopback. It answers /size/N with N bytes, only to a request
// that carries an Authorization header, and POST /token with a token of
// the given lifetime.
type upstream struct {
	url         string
	tokenGrants atomic.Int64
	close       func()
}

func startUpstream(lifetime int) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{url: "http://" + ln.Addr().String()}
	payload := bytes.Repeat([]byte("x"), 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"bench-%d","token_type":"Bearer","expires_in":%d}`, u.tokenGrants.Add(1), lifetime)
	})
	mux.HandleFunc("/size/{n}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.Copy(io.Discard, r.Body)
		size, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(payload[:min(size, len(payload))])
	})
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	u.close = func() { srv.Close(); <-done }
	return u, nil
}
