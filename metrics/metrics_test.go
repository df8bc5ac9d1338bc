package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// After SetUpstreams, an upstream not named is left out, even when a
// request that was in flight on it records itself after the reload.
func TestSeriesOfRemovedUpstreamsAreNotExported(t *testing.T) {
	m := New(func() Gauges { return Gauges{Tokens: []TokenGauge{{Upstream: "kept", ExpiresIn: 60}}} })
	for _, u := range []string{"kept", "removed", ""} {
		m.Request(u, "GET", 502, time.Millisecond, "", "upstream_unreachable", "upstream")
		m.Request(u, "GET", 200, time.Millisecond, "", "", "")
		m.TokenFetch(u, "startup", nil)
	}
	if body := scrape(t, m); !strings.Contains(body, `upstream="removed"`) {
		t.Fatalf("before any SetUpstreams every upstream is exported:\n%s", body)
	}
	m.SetUpstreams([]string{"kept"})
	m.Request("removed", "GET", 200, time.Millisecond, "replayed", "", "") // in flight during the reload
	body := scrape(t, m)
	if strings.Contains(body, `upstream="removed"`) {
		t.Errorf("a removed upstream is exported:\n%s", body)
	}
	for _, want := range []string{`authproxy_requests_total{method="GET",status="200",upstream="kept"} 1`,
		`authproxy_requests_total{method="GET",status="200",upstream="none"} 1`, `authproxy_token_expiry_seconds{upstream="kept"} 60`,
		`authproxy_request_errors_total{error="upstream_unreachable",fault="upstream",upstream="kept"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("lost %s:\n%s", want, body)
		}
	}
	// Added back, it starts afresh.
	m.SetUpstreams([]string{"kept", "removed"})
	m.Request("removed", "GET", 200, time.Millisecond, "", "", "")
	if body := scrape(t, m); !strings.Contains(body, `authproxy_requests_total{method="GET",status="200",upstream="removed"} 1`) {
		t.Errorf("an upstream added back:\n%s", body)
	}
}

// The gauges show the program as it is at each scrape: nothing sets them.
func TestGaugesAreReadAtScrape(t *testing.T) {
	g := Gauges{Tokens: []TokenGauge{{Upstream: "a", ExpiresIn: 30, Shared: true, SharedUp: true}, {Upstream: "b", ExpiresIn: -5}}, ReplayMemory: 1024}
	m := New(func() Gauges { return g })
	body := scrape(t, m)
	for _, want := range []string{`authproxy_token_expiry_seconds{upstream="a"} 30`, `authproxy_token_expiry_seconds{upstream="b"} 0`,
		`authproxy_shared_store_up{upstream="a"} 1`, `authproxy_replay_memory_bytes 1024`} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `authproxy_shared_store_up{upstream="b"}`) {
		t.Error("an upstream without a shared store reports one")
	}
	g = Gauges{Tokens: []TokenGauge{{Upstream: "a", ExpiresIn: 10, Shared: true}}}
	body = scrape(t, m)
	for _, want := range []string{`authproxy_token_expiry_seconds{upstream="a"} 10`, `authproxy_shared_store_up{upstream="a"} 0`, `authproxy_replay_memory_bytes 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("second scrape: missing %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `upstream="b"`) {
		t.Error("an upstream gone from the program is still reported")
	}
}
