package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// forEachSeed runs test against every seed API's fake.
func forEachSeed(t *testing.T, test func(t *testing.T, f fakeapi.Flavor)) {
	for _, f := range fakeapi.All() {
		t.Run(f.Name, func(t *testing.T) { test(t, f) })
	}
}

func TestPlainRequestArrivesWithTheRightHeader(t *testing.T) {
	forEachSeed(t, func(t *testing.T, f fakeapi.Flavor) {
		e := start(t, f, setup{})
		status, body, _ := e.do("GET", f.APIPath+"?order=trending&count=80", nil)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		reqs := e.api.APIRequests()
		if len(reqs) != 1 || !reqs[0].Authorized {
			t.Fatalf("the API saw %+v", reqs)
		}
		r := reqs[0]
		if r.Path != f.APIPath || r.RawQuery != "order=trending&count=80" || r.Host != strings.TrimPrefix(e.apiURL, "http://") {
			t.Errorf("path %q query %q host %q", r.Path, r.RawQuery, r.Host)
		}
		auth := r.Header.Get("Authorization")
		if f.RawAuthorization == strings.HasPrefix(auth, "Bearer ") {
			t.Errorf("Authorization %q: raw=%v expected", auth[:min(len(auth), 7)], f.RawAuthorization)
		}
		if e.api.TokenRequests() != 1 {
			t.Errorf("%d token requests", e.api.TokenRequests())
		}
	})
}

func TestConcurrentColdRequestsFetchOneToken(t *testing.T) {
	forEachSeed(t, func(t *testing.T, f fakeapi.Flavor) {
		e := start(t, f, setup{})
		if failed := e.concurrently(500, "GET", f.APIPath, nil); failed != 0 {
			t.Errorf("%d of 500 requests failed", failed)
		}
		if got := e.api.TokenRequests(); got != 1 {
			t.Errorf("500 concurrent cold requests made %d token requests, want 1", got)
		}
		if got := len(e.api.APIRequests()); got != 500 {
			t.Errorf("the API saw %d requests", got)
		}
	})
}

func TestExpiringTokenIsRefreshedInTheBackground(t *testing.T) {
	forEachSeed(t, func(t *testing.T, f fakeapi.Flavor) {
		if f.ExpiresIn == 0 {
			t.Skip(f.Name + " tokens have no expiry: they are replaced after a 401 (see the revoke test)")
		}
		e := start(t, f, setup{tokenYAML: "      refresh_before: 10m\n"})
		if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		lead := min(10*time.Minute, f.ExpiresIn/2)
		// Into the refresh window (less jitter of up to a tenth of the lead).
		e.clock.Advance(f.ExpiresIn - lead + lead/10)
		if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
			t.Fatalf("request in the refresh window: status %d", status)
		}
		waitFor(t, "the background refresh", func() bool { return e.api.TokenRequests() == 2 })
		// Past the first token's expiry: the new token is already in place.
		e.clock.Advance(lead)
		if failed := e.concurrently(50, "GET", f.APIPath, nil); failed != 0 {
			t.Errorf("%d requests failed after the first token expired", failed)
		}
		for _, r := range e.api.APIRequests() {
			if !r.Authorized {
				t.Error("the API rejected a request: the expired token was sent")
			}
		}
		if got := e.api.TokenRequests(); got != 2 {
			t.Errorf("%d token requests, want 2", got)
		}
	})
}

func TestRevokedTokenIsRefreshedOnceAndThePOSTReplayed(t *testing.T) {
	forEachSeed(t, func(t *testing.T, f fakeapi.Flavor) {
		e := start(t, f, setup{})
		if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
			t.Fatalf("status %d", status)
		}
		e.api.RevokeAll()
		body := make([]byte, 64<<10)
		rand.Read(body)
		status, resp, _ := e.do("POST", f.APIPath, body)
		if status != 200 {
			t.Fatalf("POST after revocation: status %d: %s", status, resp)
		}
		reqs := e.api.APIRequests()
		if len(reqs) != 3 {
			t.Fatalf("the API saw %d requests, want 3 (GET, rejected POST, replayed POST)", len(reqs))
		}
		if reqs[1].Authorized || !reqs[2].Authorized {
			t.Errorf("authorized: %v, %v", reqs[1].Authorized, reqs[2].Authorized)
		}
		for i, r := range reqs[1:] {
			if !bytes.Equal(r.Body, body) {
				t.Errorf("POST %d: body differs from the client's (%d of %d bytes)", i+1, len(r.Body), len(body))
			}
		}
		if got := e.api.TokenRequests(); got != 2 {
			t.Errorf("%d token requests, want 2", got)
		}
		if !strings.Contains(e.logs.String(), `"replayed":true`) {
			t.Error("the access log does not say the request was replayed")
		}

		// A burst of requests all holding the revoked token: one refresh.
		e.api.RevokeAll()
		if failed := e.concurrently(200, "POST", f.APIPath, body[:1024]); failed != 0 {
			t.Errorf("%d of 200 requests failed after the revocation", failed)
		}
		if got := e.api.TokenRequests(); got != 3 {
			t.Errorf("200 concurrent 401s caused %d refreshes, want 1", got-2)
		}
	})
}

func TestTokenEndpointFailureIsA502NamingTheCause(t *testing.T) {
	faults := []struct {
		name   string
		setup  setup
		fault  http.HandlerFunc
		detail string
	}{
		{name: "wrong secret (invalid_client)", setup: setup{secret: "not-the-secret"}, detail: "token endpoint answered 401"},
		{name: "500", fault: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			io.WriteString(w, "<html>Internal Server Error</html>")
		}, detail: "token endpoint answered 500: response body is text/html"},
		{name: "HTML page with 200", fault: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<html><body>Please log in</body></html>")
		}, detail: "status 200 with a text/html body, not JSON"},
		{name: "200 without access_token", fault: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"token_type":"bearer","expires_in":3600}`)
		}, detail: "status 200 without an access_token"},
	}
	forEachSeed(t, func(t *testing.T, f fakeapi.Flavor) {
		for _, fault := range faults {
			t.Run(fault.name, func(t *testing.T) {
				e := start(t, f, fault.setup)
				if fault.fault != nil {
					e.api.SetTokenFault(fault.fault)
				}
				status, body, hdr := e.do("GET", f.APIPath, nil)
				var got struct{ Error, Upstream, Detail string }
				if err := json.Unmarshal(body, &got); err != nil || hdr.Get("Content-Type") != "application/json" {
					t.Fatalf("status %d, body is not JSON: %s", status, body)
				}
				if status != 502 || got.Error != "token_unavailable" || got.Upstream != f.Name || !strings.Contains(got.Detail, fault.detail) {
					t.Errorf("status %d body %+v, want 502 token_unavailable with %q", status, got, fault.detail)
				}
				if strings.Contains(string(body), "not-the-secret") {
					t.Error("the error body shows the configured secret")
				}
				if n := len(e.api.APIRequests()); n != 0 {
					t.Errorf("%d requests reached the API without a token", n)
				}
				if strings.Contains(e.logs.String(), "not-the-secret") {
					t.Error("the logs show the configured secret")
				}
			})
		}
	})
}
