package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs one very short round of the three load shapes (small
// GETs, bodies, many connections; the other two scenarios differ only in
// numbers), so that the harness cannot rot: it builds both Go proxies,
// starts them (and nginx if installed), drives them and reads every
// figure. It asserts that each
// figure was read, never what it is: no timing is asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxies")
	}
	var out bytes.Buffer
	picked, err := pickScenarios("small,post64KiB,conns1000")
	if err != nil {
		t.Fatal(err)
	}
	o := options{
		scenarios: picked, rounds: 1, duration: 150 * time.Millisecond, warmup: 50 * time.Millisecond,
		nginx: findNginx(""), replayMaxBody: "1MiB", out: &out,
	}
	if o.nginx == "" {
		t.Log("nginx not installed: measuring the two Go proxies only")
	}
	reports, err := run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	if len(reports) != len(picked) {
		t.Fatalf("%d scenario reports, want %d\n%s", len(reports), len(picked), &out)
	}
	wantProxies := 2
	if o.nginx != "" {
		wantProxies = 3
	}
	for _, rep := range reports {
		if len(rep.rows) != wantProxies {
			t.Errorf("%s: %d measurements, want %d", rep.sc.name, len(rep.rows), wantProxies)
		}
		for _, m := range rep.rows {
			if m.requests == 0 || m.errors != 0 {
				t.Errorf("%s/%s: %d requests answered, %d errors", rep.sc.name, m.proxy, m.requests, m.errors)
			}
			if m.peakRSS <= 0 || m.cpuPerReq < 0 {
				t.Errorf("%s/%s: peak RSS %d, CPU/req %s: not read from /proc", rep.sc.name, m.proxy, m.peakRSS, m.cpuPerReq)
			}
			if goProxy := m.proxy != "nginx"; goProxy && (math.IsNaN(m.allocsPerReq) || m.allocsPerReq <= 0 || math.IsNaN(m.bytesPerReq) || m.bytesPerReq <= 0) {
				t.Errorf("%s/%s: allocs/req %v, bytes/req %v: not read from its /metrics", rep.sc.name, m.proxy, m.allocsPerReq, m.bytesPerReq)
			}
		}
	}
	if !strings.Contains(out.String(), "| small | authproxy |") {
		t.Errorf("no summary row for small/authproxy:\n%s", &out)
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
