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
	m := New()
	for _, u := range []string{"kept", "removed", ""} {
		m.Request(u, "GET", 200, time.Millisecond, "")
		m.TokenFetch(u, "startup", nil)
		m.TokenExpiry(u, 60)
	}
	if body := scrape(t, m); !strings.Contains(body, `upstream="removed"`) {
		t.Fatalf("before any SetUpstreams every upstream is exported:\n%s", body)
	}
	m.SetUpstreams([]string{"kept"})
	m.Request("removed", "GET", 200, time.Millisecond, "replayed") // in flight during the reload
	body := scrape(t, m)
	if strings.Contains(body, `upstream="removed"`) {
		t.Errorf("a removed upstream is exported:\n%s", body)
	}
	for _, want := range []string{`authproxy_requests_total{method="GET",status="200",upstream="kept"} 1`,
		`authproxy_requests_total{method="GET",status="200",upstream="none"} 1`, `authproxy_token_expiry_seconds{upstream="kept"} 60`} {
		if !strings.Contains(body, want) {
			t.Errorf("lost %s:\n%s", want, body)
		}
	}
	// Added back, it starts afresh.
	m.SetUpstreams([]string{"kept", "removed"})
	m.Request("removed", "GET", 200, time.Millisecond, "")
	if body := scrape(t, m); !strings.Contains(body, `authproxy_requests_total{method="GET",status="200",upstream="removed"} 1`) {
		t.Errorf("an upstream added back:\n%s", body)
	}
}
