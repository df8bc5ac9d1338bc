package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFarSmoke runs -far very briefly, so that it cannot rot: the
// namespace and its delayed link, the far API over TLS, authproxy in
// front of it, every client kind. Where `ip netns` is not permitted it
// skips, as -far does. No timing is asserted.
func TestFarSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs authproxy and the far API")
	}
	var out bytes.Buffer
	o := options{rounds: 1, duration: 200 * time.Millisecond, warmup: 50 * time.Millisecond, out: &out}
	if err := runFar(context.Background(), o, farOptions{rtt: 20 * time.Millisecond, clients: 2}); err != nil {
		t.Fatalf("runFar: %v\n%s", err, &out)
	}
	if strings.Contains(out.String(), "-far skipped") {
		t.Skip(out.String())
	}
	for _, want := range []string{"## far API, HTTP/2 offered", "## far API, HTTP/1.1 only, TLS 1.2",
		"| keep-alive | direct |", "| new connection per call | authproxy |",
		"authproxy/direct, keep-alive: p50", "authproxy/direct, new connection per call: p50",
		"first request after start"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output", want)
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "| keep-alive") || strings.HasPrefix(line, "| new connection") {
			if !strings.HasSuffix(line, "| 0 |") || strings.Contains(line, "| 0 | 0s |") {
				t.Errorf("a row with errors or no requests: %s", line)
			}
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

// TestMemorySmoke runs -memory with a few dozen idle connections instead
// of thousands, for two GC settings of authproxy and the baselines.
func TestMemorySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxies")
	}
	defer func(s []int) { idleSteps = s }(idleSteps)
	idleSteps = []int{20, 50}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	var out bytes.Buffer
	o := options{rounds: 1, duration: 150 * time.Millisecond, warmup: 50 * time.Millisecond, out: &out,
		nginx: findNginx(""), replayMaxBody: "1MiB", gcVariants: parseGCVariants("default,GOGC=100")}
	reports, err := run(context.Background(), o)
	if err != nil || len(reports) != 0 {
		t.Fatalf("run: %v, %d scenario reports\n%s", err, len(reports), &out)
	}
	want := []string{"| authproxy |", "| authproxy GOGC=100 |", "| bare+pool |"}
	if o.nginx != "" {
		want = append(want, "| nginx |")
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("no row %s", w)
		}
	}
	if strings.Contains(out.String(), " 0 MiB |") {
		t.Errorf("an RSS of 0: not read from /proc")
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
