package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// clientAddressAndRoutingHeaders are what a client could send to pose as
// another address or to steer the upstream's routing (X-Original-URL and
// X-Rewrite-URL override the path in IIS and Symfony; X-Forwarded-Prefix
// in Spring and Traefik).
var clientAddressAndRoutingHeaders = map[string]string{
	"Forwarded":           "for=6.6.6.6;host=evil.example",
	"X-Forwarded-For":     "6.6.6.6",
	"X-Forwarded-Host":    "evil.example",
	"X-Forwarded-Proto":   "https",
	"X-Forwarded-Port":    "443",
	"X-Forwarded-Prefix":  "/admin",
	"X-Forwarded-Server":  "evil.example",
	"X-Forwarded-Ssl":     "on",
	"X-Real-Ip":           "6.6.6.6",
	"True-Client-Ip":      "6.6.6.6",
	"X-Client-Ip":         "6.6.6.6",
	"X-Cluster-Client-Ip": "6.6.6.6",
	"X-Original-Url":      "/admin",
	"X-Rewrite-Url":       "/admin",
}

func TestDroppedForwardedHeadersIncludeAddressAndRoutingOverrides(t *testing.T) {
	api := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}})
	req := mustRequest(t, "GET", p.URL+"/x", nil)
	for k, v := range clientAddressAndRoutingHeaders {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Custom", "kept")
	do(t, req)
	got := api.requests()[0].header
	for k := range clientAddressAndRoutingHeaders {
		if v := got.Values(k); len(v) != 0 {
			t.Errorf("%s reached the upstream: %q", k, v)
		}
	}
	if got.Get("X-Custom") != "kept" {
		t.Error("an unrelated header was dropped")
	}
}

// With forwarded_headers: append the client is trusted to speak for the
// hops before it, so its headers pass, with its address appended.
func TestAppendedForwardedHeadersKeepTheClientChain(t *testing.T) {
	api := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, AppendForwardedFor: true})
	req := mustRequest(t, "GET", p.URL+"/x", nil)
	req.Header = http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Real-Ip": {"6.6.6.6"}}
	do(t, req)
	got := api.requests()[0].header
	if got.Get("X-Forwarded-For") != "6.6.6.6, 127.0.0.1" || got.Get("X-Real-Ip") != "6.6.6.6" {
		t.Errorf("headers %v", got)
	}
}

// CGI-style servers (PHP, WSGI and Rack apps, Django's request.META) read
// a header as HTTP_X_REAL_IP whether it came as X-Real-IP or X_Real_IP,
// so each spelling with underscores poses as the dropped header just as
// well (Go's server keeps such a name as it came).
func TestDroppedForwardedHeadersIncludeUnderscoreSpellings(t *testing.T) {
	api := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}})
	req := mustRequest(t, "GET", p.URL+"/x", nil)
	spellings := []string{"X_Forwarded_For", "X_Real_IP", "x_forwarded-host", "X-Forwarded_Prefix", "True_Client_IP", "X_Original_URL"}
	for _, k := range spellings {
		req.Header[k] = []string{"6.6.6.6"}
	}
	req.Header["X_Custom"] = []string{"kept"}
	do(t, req)
	got := api.requests()[0].header
	for k, v := range got {
		if slices.Contains(spellings, k) || slices.ContainsFunc(spellings, func(s string) bool { return http.CanonicalHeaderKey(s) == k }) {
			t.Errorf("%s reached the upstream: %q", k, v)
		}
	}
	if got.Get("X_Custom") != "kept" {
		t.Errorf("an unrelated header with an underscore was dropped: %v", got)
	}
}

// A header the proxy sets (the token's, a static one, and with
// forwarded_headers: append the X-Forwarded-* it sets) reaches the
// upstream once, with the proxy's value: a client's spelling of it with
// underscores would sit beside it, and CGI-style stacks read both as one
// (HTTP_X_API_TOKEN), in an order the client may steer (issue 21 item 7).
func TestUnderscoreSpellingsOfTheProxysHeadersAreDropped(t *testing.T) {
	norm := func(k string) string { return http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")) }
	for _, appendFor := range []bool{false, true} {
		api := newUpstream(t, nil)
		p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}, Header: "x-api-token",
			StaticHeaders: map[string]string{"X-Tenant": "ours"}, AppendForwardedFor: appendFor})
		req := mustRequest(t, "GET", p.URL+"/x", nil)
		for _, k := range []string{"X_Api_Token", "x_api_token", "X-Api_Token", "X_Tenant", "X_Forwarded_Host", "x_forwarded_proto", "X_Forwarded_For"} {
			req.Header[k] = []string{"evil"}
		}
		req.Header["X_Other_Thing"] = []string{"kept"}
		do(t, req)
		got := api.requests()[0].header
		want := map[string]bool{"X-Api-Token": true, "X-Tenant": true}
		if appendFor {
			want["X-Forwarded-Host"], want["X-Forwarded-Proto"], want["X-Forwarded-For"] = true, true, true
		}
		for k, v := range got {
			if want[norm(k)] && (k != norm(k) || slices.Contains(v, "evil")) {
				t.Errorf("append %v: %s: %q reached the upstream", appendFor, k, v)
			}
		}
		if got.Get("X-Api-Token") != "Bearer t1" || got.Get("X-Tenant") != "ours" {
			t.Errorf("append %v: the proxy's headers are not there: %v", appendFor, got)
		}
		if got.Get("X_Other_Thing") != "kept" {
			t.Errorf("append %v: an unrelated header with underscores was dropped: %v", appendFor, got)
		}
	}
}
