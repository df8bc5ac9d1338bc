package integration

// Promises about a failing token endpoint. Every test here also checks, at
// cleanup, that no secret or token reached the logs.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// errorAnswer is the JSON error body the proxy sends.
type errorAnswer struct{ Error, Upstream, Detail string }

func (e *env) expectError(path string, status int, code, detail string) http.Header {
	e.t.Helper()
	got, body, hdr := e.do("GET", path, nil)
	var ans errorAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		e.t.Fatalf("status %d, body not JSON: %s", got, body)
	}
	if got != status || ans.Error != code || !strings.Contains(ans.Detail, detail) {
		e.t.Errorf("got %d %+v, want %d %s with %q", got, ans, status, code, detail)
	}
	return hdr
}

func TestTokenEndpointRefusingConnectionsGivesA502(t *testing.T) {
	closed := httptest.NewServer(nil)
	closed.Close()
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{tokenURL: closed.URL + "/token"})
	e.expectError(f.APIPath, 502, "token_unavailable", "connection refused")
}

func TestTokenEndpointDNSFailureGivesAJSONError(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{tokenURL: "http://token.invalid/oauth", tokenYAML: "      timeout: 3s\n"})
	status, body, _ := e.do("GET", f.APIPath, nil)
	var ans errorAnswer
	json.Unmarshal(body, &ans)
	// Without network the resolver either fails at once or is cut off by
	// the token timeout; either way the client gets a quick JSON answer.
	if ans.Error != "token_unavailable" || !(status == 502 && strings.Contains(ans.Detail, "lookup") || status == 504) {
		t.Errorf("got %d %+v", status, ans)
	}
}

func TestTokenEndpointHangIsCutOffByItsTimeoutWithA504(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{tokenYAML: "      timeout: 200ms\n"})
	e.api.SetTokenFault(hang)
	e.expectError(f.APIPath, 504, "token_unavailable", "timed out after 200ms")
}

// badAnswers are token endpoint answers the proxy must treat as failures.
var badAnswers = map[string]http.HandlerFunc{
	"500": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
	"HTML page with 200": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>maintenance</html>")
	},
	"truncated JSON": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"abc","expires_in":36`)
	},
	"empty object": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	},
	"200 with an error": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"try later"}`)
	},
	"hang": hang,
	"connection dropped": func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	},
}

// hang answers only when the client gives up. It reads the body first:
// net/http notices a client hanging up only once the body is consumed.
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

func TestCachedTokenKeepsServingAndRetriesBackOffWhileTheTokenEndpointFails(t *testing.T) {
	f := fakeapi.RedGIFs()
	for name, fault := range badAnswers {
		t.Run(name, func(t *testing.T) {
			e := start(t, f, setup{tokenYAML: "      refresh_before: 10m\n      timeout: 200ms\n"})
			if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
				t.Fatal("no first token")
			}
			e.api.SetTokenFault(fault)
			e.clock.Advance(f.ExpiresIn - 9*time.Minute) // in the refresh window
			attempts := func(want int) {
				t.Helper()
				for range 20 {
					if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
						t.Fatalf("a request failed while the cached token was still valid: %d", status)
					}
				}
				// Wait for the attempt to have failed, not just started: the
				// backoff counts from when the failure is recorded.
				waitFor(t, "the refresh attempt to fail", func() bool {
					return strings.Count(e.logs.String(), `"msg":"token fetch failed"`) >= want-1
				})
				if got := e.api.TokenRequests(); got != want {
					t.Fatalf("%d token requests, want %d", got, want)
				}
			}
			attempts(2) // one failed refresh, then no retry within the backoff
			// The backoff doubles: 1s, 2s, 4s, each with up to 20% jitter.
			e.clock.Advance(1200 * time.Millisecond)
			attempts(3)
			e.clock.Advance(1900 * time.Millisecond) // < 2s: still backing off
			attempts(3)
			e.clock.Advance(500 * time.Millisecond) // > 2.4s
			attempts(4)
			for _, r := range e.api.APIRequests() {
				if !r.Authorized {
					t.Fatal("the API rejected a request: a broken answer replaced the cached token")
				}
			}
		})
	}
}

func TestTokenEndpointFailureIsSharedByEveryWaitingRequest(t *testing.T) {
	f := fakeapi.ProductHunt()
	e := start(t, f, setup{})
	var calls atomic.Int32
	e.api.SetTokenFault(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(500)
	})
	// No request gets 200; the test counts token requests, not answers.
	if failed := e.concurrently(200, "GET", f.APIPath, nil); failed != 200 {
		t.Errorf("%d of 200 failed, want all", failed)
	}
	if got := e.api.TokenRequests(); got != 1 {
		t.Errorf("200 waiting requests caused %d token requests, want 1", got)
	}
	hdr := e.expectError(f.APIPath, 502, "token_unavailable", "token endpoint answered 500")
	if hdr.Get("Retry-After") == "" {
		t.Error("no Retry-After during the backoff")
	}
	if got := e.api.TokenRequests(); got != 1 {
		t.Errorf("a request during the backoff reached the token endpoint (%d requests)", got)
	}
}

func TestTokenEndpointRetryAfterIsHonouredAndPassedOn(t *testing.T) {
	for _, tt := range []struct {
		status               int
		retryAfter, cooldown int // seconds; the cool-down is capped at 300
	}{{429, 120, 120}, {503, 60, 60}, {429, 86400, 300}} {
		t.Run(fmt.Sprint(tt.status, " ", tt.retryAfter), func(t *testing.T) {
			f := fakeapi.TeenQuotes()
			e := start(t, f, setup{})
			e.api.SetTokenFault(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", strconv.Itoa(tt.retryAfter))
				w.WriteHeader(tt.status)
			})
			hdr := e.expectError(f.APIPath, 503, "token_unavailable", fmt.Sprint("token endpoint answered ", tt.status))
			if got, _ := strconv.Atoi(hdr.Get("Retry-After")); got != tt.cooldown {
				t.Errorf("Retry-After %q, want %d", hdr.Get("Retry-After"), tt.cooldown)
			}
			e.clock.Advance(time.Duration(tt.cooldown-1) * time.Second)
			e.expectError(f.APIPath, 503, "token_unavailable", fmt.Sprint(tt.status))
			if got := e.api.TokenRequests(); got != 1 {
				t.Errorf("%d token requests during the cool-down, want 1", got)
			}
			e.api.SetTokenFault(nil)
			e.clock.Advance(time.Second)
			if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
				t.Errorf("after the cool-down: %d", status)
			}
		})
	}
}

func TestTokenEndpointRedirectIsNeverFollowed(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer elsewhere.Close()
	for _, code := range []int{307, 308} {
		f := fakeapi.RedGIFs()
		e := start(t, f, setup{})
		e.api.SetTokenFault(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/steal", code)
		})
		e.expectError(f.APIPath, 502, "token_unavailable", "redirect not followed")
	}
	if reached.Load() != 0 {
		t.Error("the client secret was sent to the redirect's target")
	}
}
