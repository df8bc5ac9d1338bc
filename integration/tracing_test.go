package integration

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// tracingQueryKey is a key in the token URL's query and in the app's
// request's query: neither may reach a trace.
const tracingQueryKey = "tracing-query-key-5f2e9a"

// TestTracesInJaeger runs the built binary with tracing on against a real
// Jaeger, over OTLP gRPC and HTTP, and reads each scenario's trace back
// through Jaeger's HTTP query API: a cold request, a burst sharing one
// fetch, a replay after a 401 and a token endpoint failure. No secret,
// token or query key may be in any of them. Set AUTHPROXY_TRACING_TESTS=1
// to run it; the first run builds Jaeger (see jaegerBinary).
func TestTracesInJaeger(t *testing.T) {
	if os.Getenv("AUTHPROXY_TRACING_TESTS") != "1" {
		t.Skip("set AUTHPROXY_TRACING_TESTS=1 to run the tracing tests against a real Jaeger (built on first use)")
	}
	j := startJaeger(t, jaegerBinary(t))
	bin := buildBinary(t)
	run := strings.ToLower(rand.Text()[:8])

	// scenario starts a fake API and the proxy in front of it, reporting
	// as its own service over protocol.
	scenario := func(t *testing.T, name, protocol string) (*fakeapi.Server, *tracedProxy, string, string) {
		f := fakeapi.RedGIFs()
		api := fakeapi.New(f, clientID, clientSecret, time.Now)
		apiURL := newServer(t, api)
		endpoint := j.grpc
		if protocol == "http" {
			endpoint = j.http
		}
		config := configFor(t, f, apiURL, setup{
			tokenURL: apiURL + f.TokenPath + "?api_key=" + tracingQueryKey,
			topYAML:  fmt.Sprintf("tracing: {enabled: true, protocol: %s, endpoint: %q}\n", protocol, endpoint),
		})
		service := "authproxy-" + name + "-" + run
		p := runTracedBinary(t, bin, config, service)
		return api, p, service, "http://" + p.addr + "/" + f.Name + f.APIPath + "?key=" + tracingQueryKey
	}
	get := func(t *testing.T, url string, traceparent string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	noSecrets := func(t *testing.T, api *fakeapi.Server, raw string) {
		for _, s := range append(api.Secrets(), tracingQueryKey) {
			if s != "" && strings.Contains(raw, s) {
				t.Errorf("a trace holds a secret, token or key (%.6s...)", s)
			}
		}
	}

	t.Run("cold request", func(t *testing.T) {
		api, p, service, url := scenario(t, "cold", "grpc")
		const traceID, clientSpan = "5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7"
		if code := get(t, url, "00-"+traceID+"-"+clientSpan+"-01"); code != 200 {
			t.Fatalf("status %d", code)
		}
		p.stop()
		traces, raw := j.traces(t, service, 5)
		if len(traces) != 1 || traces[0].TraceID != traceID {
			t.Fatalf("%d traces; want one, the client's %s: %s", len(traces), traceID, raw)
		}
		t.Logf("the cold request's trace, as Jaeger has it:\n%s", traces[0].tree())
		spans := traces[0].Spans
		server := one(t, spans, "GET redgifs")
		wait := one(t, spans, "authproxy.token.wait")
		fetch := one(t, spans, "authproxy.token.fetch")
		post := one(t, spans, "POST")
		attempt := one(t, spans, "GET")
		if server.parent() != clientSpan || server.tag("span.kind") != "server" {
			t.Errorf("the server span does not continue the client's span: %+v", server)
		}
		for _, pair := range [][2]jaegerSpan{{wait, server}, {fetch, wait}, {post, fetch}, {attempt, server}} {
			if child, parent := pair[0], pair[1]; child.parent() != parent.SpanID {
				t.Errorf("%s is not a child of %s", child.OperationName, parent.OperationName)
			}
		}
		for k, want := range map[string]string{"authproxy.token.grant": "client_credentials", "authproxy.token.client_auth": "client_secret_post",
			"authproxy.token.endpoint_status": "200", "authproxy.token.retry_count": "0", "authproxy.token.reason": "startup"} {
			if got := fetch.tag(k); got != want {
				t.Errorf("fetch span %s = %q, want %q", k, got, want)
			}
		}
		if server.tag("http.response.status_code") != "200" || attempt.tag("http.response.status_code") != "200" {
			t.Errorf("statuses: server %q, attempt %q", server.tag("http.response.status_code"), attempt.tag("http.response.status_code"))
		}
		noSecrets(t, api, raw)
	})

	t.Run("burst sharing one fetch", func(t *testing.T) {
		api, p, service, url := scenario(t, "burst", "http")
		gate, open := releasedAtCleanup(t)
		api.SetTokenGate(gate)
		const n = 8
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if code := get(t, url, ""); code != 200 {
					t.Errorf("status %d", code)
				}
			})
		}
		waitFor(t, "the burst to wait for the token", func() bool { return p.inflight() == n })
		open()
		wg.Wait()
		p.stop()
		traces, raw := j.traces(t, service, 2*n+2)
		if len(traces) != n {
			t.Fatalf("%d traces, want %d", len(traces), n)
		}
		spans := allSpans(traces)
		fetch := one(t, spans, "authproxy.token.fetch")
		waits := spansNamed(spans, "authproxy.token.wait")
		links := 0
		for _, w := range waits {
			if r := w.refs("FOLLOWS_FROM"); len(r) == 1 && r[0] == fetch.SpanID {
				links++
			}
		}
		if len(waits) < 2 || links != len(waits)-1 {
			t.Errorf("%d waits, %d of them linked to the one fetch; want all but the one that started it", len(waits), links)
		}
		if api.TokenRequests() != 1 {
			t.Errorf("%d token requests", api.TokenRequests())
		}
		noSecrets(t, api, raw)
	})

	t.Run("replay after a 401", func(t *testing.T) {
		api, p, service, url := scenario(t, "replay", "grpc")
		if code := get(t, url, ""); code != 200 {
			t.Fatalf("first request: status %d", code)
		}
		api.RevokeAll()
		if code := get(t, url, ""); code != 200 {
			t.Fatalf("replayed request: status %d", code)
		}
		p.stop()
		traces, raw := j.traces(t, service, 5+7)
		for _, tr := range traces {
			t.Logf("trace %s:\n%s", tr.TraceID, tr.tree())
		}
		spans := allSpans(traces)
		replay := one(t, spans, "authproxy.replay")
		if replay.tag("authproxy.replay.reason") != "status_401" || replay.tag("authproxy.replay") != "success" {
			t.Errorf("replay span tags %+v", replay.Tags)
		}
		var resent, rejected int
		for _, a := range spansNamed(spans, "GET") {
			switch {
			case a.tag("http.request.resend_count") == "1" && a.parent() == replay.SpanID && a.tag("http.response.status_code") == "200":
				resent++
			case a.tag("http.response.status_code") == "401":
				rejected++
			}
		}
		if resent != 1 || rejected != 1 {
			t.Errorf("%d replayed attempts under the replay span and %d rejected ones; want 1 and 1", resent, rejected)
		}
		refetch := 0
		for _, w := range spansNamed(spans, "authproxy.token.wait") {
			if w.parent() == replay.SpanID && w.tag("authproxy.token.reason") == "rejected" {
				refetch++
			}
		}
		if refetch != 1 {
			t.Errorf("no wait for the fresh token under the replay span")
		}
		noSecrets(t, api, raw)
	})

	t.Run("token endpoint failure", func(t *testing.T) {
		api, p, service, url := scenario(t, "tokenfail", "http")
		api.SetTokenFault(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"server_error","error_description":"down for maintenance"}`)
		})
		if code := get(t, url, ""); code != 502 {
			t.Fatalf("status %d, want 502", code)
		}
		p.stop()
		traces, raw := j.traces(t, service, 4)
		spans := allSpans(traces)
		server := one(t, spans, "GET redgifs")
		for k, want := range map[string]string{"authproxy.error": "token_unavailable", "authproxy.fault": "token_endpoint",
			"authproxy.error.reason": "token_endpoint_error", "error": "true", "http.response.status_code": "502"} {
			if got := server.tag(k); got != want {
				t.Errorf("server span %s = %q, want %q", k, got, want)
			}
		}
		fetch := one(t, spans, "authproxy.token.fetch")
		if fetch.tag("authproxy.token.endpoint_status") != "500" || fetch.tag("error") != "true" {
			t.Errorf("fetch span tags %+v", fetch.Tags)
		}
		noSecrets(t, api, raw)
	})
}

func one(t *testing.T, spans []jaegerSpan, name string) jaegerSpan {
	t.Helper()
	got := spansNamed(spans, name)
	if len(got) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.OperationName)
		}
		t.Fatalf("%d spans named %q, want 1; spans: %s", len(got), name, strings.Join(names, ", "))
	}
	return got[0]
}
