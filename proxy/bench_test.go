package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

// BenchmarkHeaderInjection measures the token transport alone: token
// lookup, header rendering (cached per token) and the request copy.
func BenchmarkHeaderInjection(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	tr := &tokenTransport{
		base:     roundTripFunc(func(*http.Request) (*http.Response, error) { return ok, nil }),
		upstream: "api", tokens: &fakeTokens{}, header: "Authorization", render: headerTemplate("Bearer {token}"),
		replayOn: []int{401}, maxBody: 1 << 20,
	}
	// The request's state is made by the handler, once per request: it is
	// not the transport's cost (BenchmarkProxyRequest has it).
	req, _ := withRequestState(httptest.NewRequest("GET", "http://api.example/x", nil))
	req.Header.Set("Accept", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyRequest is one whole request through the handler, over
// loopback to an httptest upstream.
func BenchmarkProxyRequest(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 256))
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	h, err := New([]Upstream{{Name: "api", Target: target, Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/x")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkHeaderInjectionDPoP is BenchmarkHeaderInjection with a DPoP
// proof signed for every request (issue 25), beside Bearer: the proof's
// cost in CPU and allocations per request, without the network.
func BenchmarkHeaderInjectionDPoP(b *testing.B) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"Bearer", nil}, {"ES256", p256}, {"EdDSA", ed}} {
		b.Run(k.name, func(b *testing.B) {
			ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
			tr := &tokenTransport{
				base:     roundTripFunc(func(*http.Request) (*http.Response, error) { return ok, nil }),
				upstream: "api", tokens: &fakeTokens{}, header: "Authorization", render: headerTemplate("Bearer {token}"),
				replayOn: []int{401}, maxBody: 1 << 20,
			}
			if k.key != nil {
				key, err := auth.NewDPoPKey(k.key, "", nil)
				if err != nil {
					b.Fatal(err)
				}
				tr.tokens, tr.render, tr.perRequest = &fakeTokens{tokenType: "DPoP"}, headerTemplate("{token_type} {token}"), dpopProof{key: key, upstream: "api"}
			}
			req, _ := withRequestState(httptest.NewRequest("GET", "http://api.example/x", nil))
			req.Header.Set("Accept", "application/json")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
