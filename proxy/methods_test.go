package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// An upstream that honours TRACE (Apache's default TraceEnable On, many
// appliances and debug servers) echoes the request it received, the
// injected token included: the proxy must never send one (RFC 9110
// 9.3.8), nor IIS's TRACK, which it answers alike, in any case.
func TestTraceAndTrackAreRefused(t *testing.T) {
	api := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		w.Header().Set("Content-Type", "message/http")
		dump, _ := httputil.DumpRequest(r, false)
		w.Write(dump)
	})
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: &fakeTokens{}})
	for _, method := range []string{"TRACE", "TRACK", "trace", "Track"} {
		resp := do(t, mustRequest(t, method, p.URL+"/x", nil))
		allow := resp.Header.Get("Allow")
		raw, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(raw), "t1") {
			t.Errorf("%s: the answer shows the token:\n%s", method, raw)
		}
		var body map[string]any
		json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusMethodNotAllowed || body["error"] != "method_not_allowed" {
			t.Errorf("%s: status %d body %v, want 405 method_not_allowed", method, resp.StatusCode, body)
		}
		if allow == "" || strings.Contains(strings.ToUpper(allow), "TRACE") || strings.Contains(strings.ToUpper(allow), "TRACK") {
			t.Errorf("%s: Allow %q", method, allow)
		}
	}
	if got := api.requests(); len(got) != 0 {
		t.Errorf("the upstream got %d refused requests, the first a %s", len(got), got[0].method)
	}
	// Every other method goes on, with its token.
	for _, method := range []string{"GET", "OPTIONS", "PROPFIND"} {
		if resp := do(t, mustRequest(t, method, p.URL+"/x", nil)); resp.StatusCode != 200 {
			t.Errorf("%s: status %d", method, resp.StatusCode)
		}
	}
	if got := api.requests(); len(got) != 3 || got[2].header.Get("Authorization") != "Bearer t1" {
		t.Errorf("the upstream saw %+v", got)
	}
}
