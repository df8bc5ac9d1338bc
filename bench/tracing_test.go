package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestSmokeTraced runs one short round with -traced: authproxy is
// measured with tracing on beside the untraced one, its spans reach the
// sink, and the closing note has the row. No figure is asserted.
func TestSmokeTraced(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxies")
	}
	var out bytes.Buffer
	picked, err := pickScenarios("small")
	if err != nil {
		t.Fatal(err)
	}
	o := options{scenarios: picked, rounds: 1, duration: 150 * time.Millisecond, warmup: 50 * time.Millisecond,
		replayMaxBody: "1MiB", traced: true, out: &out}
	reports, err := run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	printTracing(&out, reports)
	var traced bool
	for _, m := range reports[0].rows {
		if m.proxy == "traced" {
			traced = m.requests > 0 && m.errors == 0 && m.allocsPerReq > 0
		}
	}
	if !traced {
		t.Errorf("no measurement of the traced authproxy:\n%s", &out)
	}
	if sink.bytes.Load() == 0 {
		t.Errorf("the traced authproxy sent no spans to the sink")
	}
	if !strings.Contains(out.String(), "| small | ") || !strings.Contains(out.String(), "# tracing on") {
		t.Errorf("no tracing row in the closing note:\n%s", &out)
	}
}
