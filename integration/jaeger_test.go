package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/syncbuf"
)

// The tracing tests run a real trace backend: Jaeger v2, built from its
// Go module as a tool. Its dependencies are many and stay out of
// authproxy's go.mod: integration/jaeger is a module of its own that only
// pins the version. The binary is built once into the user's cache
// directory (~/.cache/authproxy-tools/jaeger-v1.75.0/jaeger) and reused;
// AUTHPROXY_JAEGER_BIN names another.

// jaegerVersion is the version integration/jaeger/go.mod requires.
const jaegerVersion = "v1.75.0"

// jaegerBinary returns the Jaeger binary, building it on first use.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("AUTHPROXY_JAEGER_BIN"); bin != "" {
		return bin
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "authproxy-tools", "jaeger-"+jaegerVersion, "jaeger")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building Jaeger %s into %s: the first build takes several minutes", jaegerVersion, bin)
	began := time.Now()
	tmp := bin + ".partial"
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/jaegertracing/jaeger/cmd/jaeger")
	cmd.Dir = "jaeger"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building Jaeger: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built Jaeger in %s", time.Since(began).Round(time.Second))
	return bin
}

// jaegerConfig is Jaeger's all-in-one configuration on loopback only:
// OTLP over gRPC and HTTP in, memory storage, the query API out, and no
// other listener (its own metrics are off).
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 50ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// jaeger is a running Jaeger.
type jaeger struct {
	query      string // the query API's base URL
	grpc, http string // the OTLP receivers' URLs
}

func startJaeger(t *testing.T, bin string) *jaeger {
	t.Helper()
	qport, qgrpc, gport, hport := freePort(t), freePort(t), freePort(t), freePort(t)
	path := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, jaegerConfig, qport, qgrpc, gport, hport), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("Jaeger's log:\n%s", logs)
		}
	})
	j := &jaeger{query: fmt.Sprintf("http://127.0.0.1:%d", qport),
		grpc: fmt.Sprintf("http://127.0.0.1:%d", gport), http: fmt.Sprintf("http://127.0.0.1:%d", hport)}
	waitFor(t, "Jaeger's query API", func() bool {
		resp, err := http.Get(j.query + "/api/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return j
}

// jaegerTrace is a trace as Jaeger's HTTP query API gives it.
type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	Duration      int64  `json:"duration"` // µs
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// tag is the span's tag key as text ("" if absent).
func (s jaegerSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// ref is the span ID of the span's reference of type refType ("" if none).
func (s jaegerSpan) refs(refType string) []string {
	var out []string
	for _, r := range s.References {
		if r.RefType == refType {
			out = append(out, r.SpanID)
		}
	}
	return out
}

func (s jaegerSpan) parent() string {
	if p := s.refs("CHILD_OF"); len(p) > 0 {
		return p[0]
	}
	return ""
}

// traces reads service's traces until there are at least n spans in
// them, and returns them with the API's raw answer.
func (j *jaeger) traces(t *testing.T, service string, spans int) ([]jaegerTrace, string) {
	t.Helper()
	var got struct {
		Data []jaegerTrace `json:"data"`
	}
	var raw []byte
	waitFor(t, fmt.Sprintf("%d spans of %s in Jaeger", spans, service), func() bool {
		resp, err := http.Get(j.query + "/api/traces?limit=1000&lookback=1h&service=" + service)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, _ = io.ReadAll(resp.Body)
		got.Data = nil
		if resp.StatusCode != 200 || json.Unmarshal(raw, &got) != nil {
			return false
		}
		n := 0
		for _, tr := range got.Data {
			n += len(tr.Spans)
		}
		return n >= spans
	})
	return got.Data, string(raw)
}

// allSpans are the spans of every trace.
func allSpans(traces []jaegerTrace) []jaegerSpan {
	var out []jaegerSpan
	for _, tr := range traces {
		out = append(out, tr.Spans...)
	}
	return out
}

func spansNamed(spans []jaegerSpan, name string) []jaegerSpan {
	var out []jaegerSpan
	for _, s := range spans {
		if s.OperationName == name {
			out = append(out, s)
		}
	}
	return out
}

// tracedProxy is the built binary with tracing on, reporting as service.
type tracedProxy struct {
	addr, admin string
	stop        func() // sends the spans still held, and exits
}

func runTracedBinary(t *testing.T, bin, config, service string) *tracedProxy {
	t.Helper()
	cmd := exec.Command(bin, "--config", config)
	// Spans are sent every 50 ms rather than 5 s; the rest as by default.
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+service, "OTEL_BSP_SCHEDULE_DELAY=50")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	addr, admin, logDone := listening(t, stderr, logs)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		<-logDone
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", service, err)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s's log:\n%s", service, logs)
		}
		for _, s := range []string{clientSecret, tracingQueryKey} {
			if strings.Contains(logs.String(), s) {
				t.Errorf("%s's log holds a secret", service)
			}
		}
	})
	return &tracedProxy{addr: addr, admin: admin, stop: stop}
}

// inflight reads the proxy's authproxy_inflight_requests.
func (p *tracedProxy) inflight() int {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "authproxy_inflight_requests "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

// tree writes a trace's spans as a tree, with their tags, for the log.
func (tr jaegerTrace) tree() string {
	var b strings.Builder
	children := map[string][]jaegerSpan{}
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	var roots []jaegerSpan
	for _, s := range tr.Spans {
		if p := s.parent(); p != "" && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var walk func(s jaegerSpan, depth int)
	walk = func(s jaegerSpan, depth int) {
		fmt.Fprintf(&b, "%s%s  %.1f ms", strings.Repeat("  ", depth), s.OperationName, float64(s.Duration)/1000)
		for _, t := range s.Tags {
			if strings.HasPrefix(t.Key, "authproxy.") || strings.HasPrefix(t.Key, "http.") || t.Key == "url.full" || t.Key == "span.kind" || t.Key == "error" {
				fmt.Fprintf(&b, " %s=%v", t.Key, t.Value)
			}
		}
		if f := s.refs("FOLLOWS_FROM"); len(f) > 0 {
			fmt.Fprintf(&b, " links=%v", f)
		}
		b.WriteString("\n")
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
