package auth

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkCacheTokenValid is the hot path every request takes: a cached,
// valid token. It must not allocate or lock.
func BenchmarkCacheTokenValid(b *testing.B) {
	src := &fakeSource{fn: func(context.Context, int32) (*Token, error) {
		return &Token{AccessToken: "t", Expiry: time.Now().Add(time.Hour)}, nil
	}}
	c := NewCache(src, CacheOptions{RefreshBefore: time.Minute})
	ctx := context.Background()
	c.Token(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := testing.AllocsPerRun(100, func() { c.Token(ctx) }); n != 0 {
		b.Errorf("%v allocations per cached Token call, want 0", n)
	}
}

// BenchmarkClientAssertion is what client authentication adds to each
// token request: a signed assertion minted anew (private_key_jwt,
// client_secret_jwt), or the platform's read from its file. Token
// requests are rare (one per token lifetime per upstream), so this is
// never on a request's path.
func BenchmarkClientAssertion(b *testing.B) {
	k := testKeys()
	for _, bc := range []struct {
		name string
		cfg  AssertionConfig
	}{
		{"RS256", AssertionConfig{Key: k["rsa"]}}, {"PS256", AssertionConfig{Key: k["rsa"], Alg: PS256}},
		{"ES256", AssertionConfig{Key: k["p256"]}}, {"ES384", AssertionConfig{Key: k["p384"]}},
		{"EdDSA", AssertionConfig{Key: k["ed25519"]}}, {"HS256", AssertionConfig{Secret: strings.Repeat("s", 32)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			cfg.ClientID, cfg.TokenURL, cfg.KeyID = "client-id", testTokenURL, "key-1"
			a, err := NewSignedAssertion(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Assertion(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("file", func(b *testing.B) {
		a, _ := NewSignedAssertion(AssertionConfig{ClientID: "client-id", TokenURL: testTokenURL, Key: k["p256"]})
		tok, _ := a.Assertion()
		path := filepath.Join(b.TempDir(), "token")
		os.WriteFile(path, []byte(tok+"\n"), 0o600)
		f := AssertionFile(path)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Assertion(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTracedTokenRequest is what tracing adds to one token request:
// its client span and the traceparent it carries, over a transport that
// answers at once. Token requests are rare; this is for comparison.
func BenchmarkTracedTokenRequest(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	base := &http.Client{Transport: answerAtOnce(func(*http.Request) (*http.Response, error) { return ok, nil })}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(droppedSpans{})))
	hc := traceTokenEndpoint(base, sdk)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", "http://idp.example/token?api_key=k", http.NoBody)
		if _, err := hc.Transport.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// answerAtOnce is a RoundTripper made of a function.
type answerAtOnce func(*http.Request) (*http.Response, error)

func (f answerAtOnce) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// droppedSpans is an exporter that drops what it is given.
type droppedSpans struct{}

func (droppedSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (droppedSpans) Shutdown(context.Context) error                             { return nil }
