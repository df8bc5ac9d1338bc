package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"testing"
)

// The forward proxy's cost next to the reverse path and to a plain
// TLS-terminating Go proxy doing the same (httputil.ReverseProxy behind
// TLS, no token): GETs over one kept-alive connection, and new tunnels
// with the leaf certificate cached. The upstream is the same HTTPS
// server on loopback for all. Run with -bench Forward -benchmem.
func BenchmarkForward(b *testing.B) {
	ft := startForward(b, forwardSetup{opts: Options{AccessLog: noAccessLog{}}})
	get := func(b *testing.B, c *http.Client, url string) {
		for b.Loop() {
			resp, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	}
	b.Run("reverse", func(b *testing.B) {
		h, err := New([]Upstream{{Name: "api", Target: mustURL(b, ft.api.URL), Tokens: &fakeTokens{}, Transport: ft.apiTransport()}}, Options{AccessLog: noAccessLog{}})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		get(b, &http.Client{}, srv.URL+"/api/x")
	})
	b.Run("tunnel", func(b *testing.B) {
		c := ft.client(ft.proxyURL)
		c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
		c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		get(b, c, "https://api.test.example/x")
	})
	b.Run("plain-tls-proxy", func(b *testing.B) {
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(mustURL(b, ft.api.URL)) }, Transport: ft.apiTransport()}
		srv := httptest.NewTLSServer(rp)
		defer srv.Close()
		c := srv.Client()
		c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		get(b, c, srv.URL+"/x")
	})
	b.Run("new-tunnel", func(b *testing.B) {
		c := ft.client(ft.proxyURL)
		tr := c.Transport.(*http.Transport)
		tr.DisableKeepAlives = true
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		get(b, c, "https://api.test.example/x")
	})
}
