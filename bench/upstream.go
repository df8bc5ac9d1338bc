package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	// dpop is the scenario's DPoP algorithm, "" for none: authproxy is
	// given a key of it. The API does not verify proofs: what is
	// measured is the proxy's cost of making them.
	dpop string
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
		typ := "Bearer"
		if r.Header.Get("DPoP") != "" {
			typ = "DPoP"
		}
		fmt.Fprintf(w, `{"access_token":"bench-%d","token_type":%q,"expires_in":%d}`, u.tokenGrants.Add(1), typ, lifetime)
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

// dpopSetting writes a key of alg into dir and returns the token's dpop
// setting for it; "" for no alg.
func dpopSetting(dir, alg string) string {
	if alg == "" {
		return ""
	}
	var key crypto.Signer
	if alg == "EdDSA" {
		_, key, _ = ed25519.GenerateKey(rand.Reader)
	} else {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "dpop.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		panic(err)
	}
	return fmt.Sprintf(", dpop: {private_key_file: %q, signing_alg: %s}", path, alg)
}
