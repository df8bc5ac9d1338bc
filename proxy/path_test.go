package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// dotSegmentVariants are request paths that some server, framework or
// file system reads as climbing out of the directory they name: Tomcat's
// path parameters (..;), backslashes (IIS, ASP.NET, Windows file APIs),
// percent-encodings of either in any case, double encodings decoded by
// a second layer, NUL truncation, Windows' trailing-dot stripping and
// Unicode look-alikes folded by NFKC.
var dotSegmentVariants = []string{
	"/a/../b",
	"/a/./b",
	"/..",
	"/a/..;/b",
	"/a/..;jsessionid=x/b",
	"/a/.;/b",
	`/a/..\b`,
	`/a\..\b`,
	`/a/\..`,
	"/a/..%5cb",
	"/a/..%5Cb",
	"/a%5c..%5cb",
	"/a/%2e%2e/b",
	"/a/%2E%2e/b",
	"/a/.%2e/b",
	"/a/%2e./b",
	"/a/%2e/b",
	"/a/..%2fb",
	"/a/%252e%252e/b",
	"/a/%252E%252E%252fb",
	"/a/..%255cb",
	"/a/%25252e%25252e/b",
	"/a/..%00/b",
	"/a/...",
	"/a/.../b",
	"/a/..%20/b",
	"/a/..%09/b",
	"/a/%ef%bc%8e%ef%bc%8e/b",
	"/a/..%ef%bc%8fb",
	"/a/..%ef%bc%bcb",
	"/a/%e2%80%a5/b",
	"/a/%e2%80%a4%e2%80%a4/b",
	"/a/%e2%80%a6/b",
	"/a/%ef%b9%92./b",
	"/a/..%ef%b9%a8b",
	"/a/%c0%ae%c0%ae/b",
	"/a/%25e2%2580%25a5/b",
}

func TestDotSegmentVariantsAreRefused(t *testing.T) {
	api := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL+"/base"), PathPrefix: "/api", Tokens: &fakeTokens{}})
	for _, path := range dotSegmentVariants {
		before := len(api.requests())
		status, body := rawRequest(t, p.Listener.Addr().String(), "GET /api"+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if status != 400 || !strings.Contains(body, `"error":"bad_request"`) {
			t.Errorf("%s: status %d %s, want 400 bad_request", path, status, strings.TrimSpace(body))
		}
		if got := api.requests()[before:]; len(got) != 0 {
			t.Errorf("%s reached the upstream as %q (raw %q)", path, got[0].path, got[0].rawPath)
		}
	}
}

// Paths that only look odd are forwarded as they came.
func TestPathsWithDotsThatAreNotSegmentsPass(t *testing.T) {
	api := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL+"/base"), PathPrefix: "/api", Tokens: &fakeTokens{}})
	for path, want := range map[string]string{
		"/v1.0/file.tar.gz":      "/base/v1.0/file.tar.gz",
		"/a..b/..c/d..":          "/base/a..b/..c/d..",
		"/.well-known/x":         "/base/.well-known/x",
		"/projects/group%2Fname": "/base/projects/group%2Fname",
		"/search/100%25":         "/base/search/100%25",
		"/a;b=c/d":               "/base/a;b=c/d",
		"/caf%C3%A9":             "/base/caf%C3%A9",
		"/a/%2e%2ex":             "/base/a/%2e%2ex",
		"//169.254.169.254/x":    "/base//169.254.169.254/x",
		"/weird%20name/x%2520y":  "/base/weird%20name/x%2520y",
	} {
		before := len(api.requests())
		status, body := rawRequest(t, p.Listener.Addr().String(), "GET /api"+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		got := api.requests()[before:]
		if status != 200 || len(got) != 1 {
			t.Errorf("%s: status %d %s", path, status, body)
			continue
		}
		raw := (&url.URL{Path: got[0].path, RawPath: got[0].rawPath}).EscapedPath()
		if !strings.EqualFold(raw, want) {
			t.Errorf("%s reached the upstream as %q, want %q", path, raw, want)
		}
	}
}
