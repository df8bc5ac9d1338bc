package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// With -traced, authproxy is measured a second time with tracing on,
// every trace sampled, as "traced": its spans go over OTLP/HTTP, batched
// as in production, to a sink in this process that reads and drops them.
// The closing note gives traced over untraced authproxy, measured in the
// same rounds.

func init() { measuredAuthproxies = append(measuredAuthproxies, "traced") }

// startTraced runs this checkout's authproxy as startAuthproxy does, with
// tracing on (see tracedEnv).
func (ps *proxies) startTraced(ctx context.Context, up *upstream) (*proxyProc, error) {
	return ps.runAuthproxy(ctx, up, "traced", ps.authproxy, false, nil)
}

// tracedEnv turns tracing on for the proxy named traced, through the
// config's environment overrides: the same proxy.yaml as the others.
func tracedEnv(name string) []string {
	if name != "traced" {
		return nil
	}
	return []string{"AUTHPROXY_TRACING_ENABLED=true", "AUTHPROXY_TRACING_PROTOCOL=http",
		"AUTHPROXY_TRACING_ENDPOINT=" + sink.url(), "AUTHPROXY_TRACING_SAMPLE_RATIO=1"}
}

// otlpSink answers OTLP/HTTP exports with an empty success, having read
// them whole, and counts the bytes it got.
type otlpSink struct {
	once  sync.Once
	addr  string
	bytes atomic.Int64
}

var sink otlpSink

func (s *otlpSink) url() string {
	s.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(fmt.Sprintf("bench: OTLP sink: %v", err))
		}
		s.addr = ln.Addr().String()
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			s.bytes.Add(n)
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusOK)
		}))
	})
	return "http://" + s.addr
}

// printTracing writes the cost of tracing: traced over untraced
// authproxy, medians over rounds.
func printTracing(out io.Writer, reports []scenarioReport) {
	fmt.Fprintln(out, "\n# tracing on (every trace sampled, OTLP/HTTP) over off: authproxy traced/authproxy, medians over rounds")
	fmt.Fprintln(out, "| scenario | CPU/req off | CPU/req on | CPU ratio | allocs/req off | allocs/req on | allocs ratio | throughput ratio | p99 ratio |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|")
	for _, rep := range reports {
		s := summarize(rep)
		off, ok1 := s.perProxy["authproxy"]
		on, ok2 := s.perProxy["traced"]
		if !ok1 || !ok2 {
			continue
		}
		fmt.Fprintf(out, "| %s | %.1f µs | %.1f µs | %.3f | %s | %s | %s | %.3f | %.3f |\n", rep.sc.name,
			micros(off.cpuPerReq), micros(on.cpuPerReq), float64(on.cpuPerReq)/float64(off.cpuPerReq),
			allocsString(off.allocsPerReq), allocsString(on.allocsPerReq), ratioString(on.allocsPerReq/off.allocsPerReq),
			on.rps/off.rps, float64(on.p99)/float64(off.p99))
	}
	fmt.Fprintf(out, "(the sink received %d bytes of spans)\n", sink.bytes.Load())
}
