package proxy

import (
	"net/http"
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
