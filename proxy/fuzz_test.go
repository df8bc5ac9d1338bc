package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// roundTripFunc is a transport that a test answers itself.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var fuzzHeaderName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// dotSegmentIn is the fuzz test's own reading of a path, written apart
// from the proxy's: after each layer of percent-decoding, with "\" and
// the full-width and small solidi as separators and what NFKC folds to
// dots (and the overlong UTF-8 for ".") as dots, is there a segment of
// dots only once cut at ";" or NUL and trimmed of blanks? A path still
// decoding after eight layers counts as one.
func dotSegmentIn(p string) (reading string, found bool) {
	fold := strings.NewReplacer("\\", "/", "\uff0f", "/", "\uff3c", "/", "\ufe68", "/",
		"\uff0e", ".", "\ufe52", ".", "\u2024", ".", "\u2025", "..", "\u2026", "...", "\xc0\xae", ".")
	for range 8 {
		for _, seg := range strings.Split(fold.Replace(p), "/") {
			seg, _, _ = strings.Cut(seg, ";")
			seg, _, _ = strings.Cut(seg, "\x00")
			seg = strings.Trim(seg, " \t")
			if seg != "" && strings.Trim(seg, ".") == "" {
				return p, true
			}
		}
		next, err := url.PathUnescape(p)
		if err != nil || next == p {
			return "", false
		}
		p = next
	}
	return p, true
}

// FuzzRewrite sends arbitrary paths, queries, headers and Host values
// through the handler and checks what would leave for the upstream: only
// the target's scheme and host, under its base path, without a dot
// segment in any reading (dotSegmentIn), without the client's
// forwarding and path-override headers, with exactly the injected token and without the proxy's own
// API key. The seed corpus is in testdata/fuzz/FuzzRewrite.
func FuzzRewrite(f *testing.F) {
	f.Add("/api/v2/gifs/search", "order=trending&count=80", "X-Custom", "v", "evil.example")
	f.Fuzz(func(t *testing.T, path, query, headerName, headerValue, host string) {
		const key = "proxy-key-0123456789abcdef"
		var out *http.Request
		transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			out = r
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		h, err := New([]Upstream{{
			Name: "api", Target: &url.URL{Scheme: "https", Host: "api.example", Path: "/base"}, PathPrefix: "/api",
			Tokens: &fakeTokens{}, Transport: transport, StaticHeaders: map[string]string{"X-Api-Key": "k"},
		}}, Options{Inbound: Inbound{APIKeys: []string{key}}})
		if err != nil {
			t.Fatal(err)
		}
		requestURI := path
		if query != "" {
			requestURI += "?" + query
		}
		u, err := url.ParseRequestURI(requestURI)
		if err != nil || strings.ContainsAny(requestURI, " \r\n") {
			return // the server would not have parsed it either
		}
		req := (&http.Request{Method: "GET", URL: u, RequestURI: requestURI, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: host, RemoteAddr: "127.0.0.1:1234"}).WithContext(context.Background())
		if fuzzHeaderName.MatchString(headerName) && !strings.ContainsAny(headerValue, "\r\n\x00") {
			req.Header.Add(headerName, headerValue)
		}
		req.Header.Set("X-Authproxy-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if out == nil {
			if rec.Code < 400 || rec.Code > 499 {
				t.Fatalf("nothing forwarded, yet status %d", rec.Code)
			}
			return
		}
		if out.URL.Scheme != "https" || out.URL.Host != "api.example" || (out.Host != "" && out.Host != "api.example") {
			t.Fatalf("forwarded to %s://%s (Host %q)", out.URL.Scheme, out.URL.Host, out.Host)
		}
		for _, p := range []string{out.URL.Path, out.URL.EscapedPath()} {
			if !strings.HasPrefix(p, "/base/") && p != "/base" {
				t.Fatalf("path %q left the target's base path", p)
			}
			if reading, ok := dotSegmentIn(p); ok {
				t.Fatalf("dot segment forwarded in %q (read as %q)", p, reading)
			}
		}
		if name := http.CanonicalHeaderKey(headerName); strings.HasPrefix(name, "X-Forwarded-") || name == "Forwarded" ||
			name == "X-Real-Ip" || name == "X-Original-Url" || name == "X-Rewrite-Url" {
			if v := out.Header.Values(name); len(v) != 0 {
				t.Fatalf("client-sent %s forwarded: %q", name, v)
			}
		}
		if got := out.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer t1" {
			t.Fatalf("Authorization %q", got)
		}
		if out.Header.Get("X-Authproxy-Key") != "" || out.Header.Get("X-Api-Key") != "k" {
			t.Fatalf("headers %v", out.Header)
		}
	})
}
