package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestForwardSmoke runs one very short round of each forward-proxy
// scenario, so that their harness cannot rot: the three processes start,
// the tunnels, the TLS baseline and the plain path each answer, and every
// figure is read. No timing is asserted.
func TestForwardSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxies")
	}
	var out bytes.Buffer
	picked, err := pickScenarios("forward,forwardNew")
	if err != nil {
		t.Fatal(err)
	}
	o := options{scenarios: picked, rounds: 1, duration: 150 * time.Millisecond, warmup: 50 * time.Millisecond, replayMaxBody: "1MiB", out: &out}
	reports, err := run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	for _, rep := range reports {
		seen := map[string]bool{}
		for _, m := range rep.rows {
			seen[m.proxy] = true
			if m.requests == 0 || m.errors != 0 || m.peakRSS <= 0 || !(m.allocsPerReq > 0) {
				t.Errorf("%s/%s: %d requests, %d errors, peak RSS %d, allocs/req %v", rep.sc.name, m.proxy, m.requests, m.errors, m.peakRSS, m.allocsPerReq)
			}
		}
		if len(seen) != 3 || !seen["authproxy"] || !seen["reverse"] || !seen["bare"] {
			t.Errorf("%s: measured %v; want authproxy (forward), reverse and bare", rep.sc.name, seen)
		}
	}
	if !strings.Contains(out.String(), "forward/tls-bare throughput") {
		t.Errorf("no forward ratios:\n%s", &out)
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
