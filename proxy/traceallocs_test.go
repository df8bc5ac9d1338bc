package proxy

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// discardSpans is an exporter that drops what it is given.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// TestTracingAllocations reports what a proxied GET with a cached token
// allocates with tracing off and on (every trace sampled, spans made and
// handed to an exporter that drops them: the export's own encoding is
// measured by bench -traced). Off, it must be what it was without
// tracing: a nil or noop TracerProvider is the same as none.
func TestTracingAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations over thousands of requests, without the race detector")
	}
	target := mustURL(t, "http://api.example")
	api := cannedAPI{strings.Repeat("x", 256)}
	allocs := func(tp trace.TracerProvider) float64 {
		h, err := New([]Upstream{{Name: "api", Target: target, Tokens: &fakeTokens{}, Transport: api,
			ReplayOn: []int{401}, MaxReplayBody: 1 << 20, IdleTimeout: time.Minute}},
			Options{AccessLog: noAccessLog{}, TracerProvider: tp})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		return testing.AllocsPerRun(1000, func() {
			req := httptest.NewRequest("GET", "/v1/items", nil)
			req.Header.Set("Traceparent", clientTraceparent)
			w.Body.Reset()
			h.ServeHTTP(w, req)
		})
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(discardSpans{})))
	off, noopOn, on := allocs(nil), allocs(noop.NewTracerProvider()), allocs(sdk)
	t.Logf("allocations a request: tracing off %.1f, noop provider %.1f, on %.1f", off, noopOn, on)
	if noopOn != off {
		t.Errorf("a noop TracerProvider costs %.1f allocations a request more than none", noopOn-off)
	}
}

// BenchmarkTracedRequest is one proxied GET with a cached token and
// tracing on (every span made, handed to an exporter that drops it),
// without the network: what the server span and the attempt's client
// span cost a request.
func BenchmarkTracedRequest(b *testing.B) {
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(discardSpans{})))
	h, err := New([]Upstream{{Name: "api", Target: mustURL(b, "http://api.example"), Tokens: &fakeTokens{},
		Transport: cannedAPI{strings.Repeat("x", 256)}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20, IdleTimeout: time.Minute}},
		Options{AccessLog: noAccessLog{}, TracerProvider: sdk})
	if err != nil {
		b.Fatal(err)
	}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/v1/items", nil)
		req.Header.Set("Traceparent", clientTraceparent)
		w.Body.Reset()
		h.ServeHTTP(w, req)
	}
}
