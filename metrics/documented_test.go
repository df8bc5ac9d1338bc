package metrics

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// Every authproxy_ metric the proxy exports is in a metrics table of the
// README or of a guide in docs/ (the forward proxy's is in its guide): an
// operator reads the table, not the code, to build alerts.
func TestEveryMetricIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	guides, _ := filepath.Glob("../docs/*.md")
	for _, g := range guides {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		readme = append(readme, b...)
	}
	m := New(func() Gauges {
		return Gauges{Tokens: []TokenGauge{{Upstream: "a", ExpiresIn: 30, Shared: true, SharedUp: true}}, ReplayMemory: 1}
	})
	// Record once through every hook, so that each vector has a series.
	m.Request("a", "GET", 502, time.Millisecond, "success", "upstream_unreachable", "upstream")
	m.TokenFetch("a", "startup", nil)
	m.SharedToken("a", "fetched")
	m.ReplaySkipped("a", "max_body")
	m.UpstreamTruncated("a")
	m.ForwardRequest("a", "api.example.com:443", 200)
	m.InFlight(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))

	names := regexp.MustCompile(`(?m)^# TYPE (authproxy_\w+) `).FindAllStringSubmatch(scrape(t, m), -1)
	if len(names) < 10 {
		t.Fatalf("found only %d metrics in the scrape", len(names))
	}
	for _, n := range names {
		if !regexp.MustCompile("(?m)^\\| `" + n[1] + "` \\|").Match(readme) {
			t.Errorf("%s is exported but not in docs/operating.md's metrics table", n[1])
		}
	}
}
