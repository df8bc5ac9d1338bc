package outbound

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traced is a SpanTransport over a real transport, its spans recorded,
// and a caller's span to start requests in.
type traced struct {
	spans  *tracetest.SpanRecorder
	tr     *SpanTransport
	caller trace.Span
	ctx    context.Context
}

func newTraced(t *testing.T) *traced {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	tracer := tp.Tracer("outbound_test")
	ctx, caller := tracer.Start(context.Background(), "caller")
	t.Cleanup(func() { caller.End() })
	base := Transport(Settings{})
	t.Cleanup(base.CloseIdleConnections)
	return &traced{spans: spans, tr: &SpanTransport{Base: base, Tracer: tracer}, caller: caller, ctx: ctx}
}

// send sends a GET to rawURL through the SpanTransport and returns the
// one client span it made.
func (s *traced) send(t *testing.T, rawURL string) (*http.Response, sdktrace.ReadOnlySpan, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(s.ctx, "GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.tr.RoundTrip(req)
	if resp != nil {
		resp.Body.Close()
	}
	ended := s.spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	return resp, ended[0], err
}

// attrs is a span's attributes as key=value, in their order.
func attrs(sp sdktrace.ReadOnlySpan) string {
	var out []string
	for _, kv := range sp.Attributes() {
		out = append(out, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(out, " ")
}

// answering is a server on 127.0.0.1 that answers status and keeps the
// traceparent it was sent.
func answering(t *testing.T, status int, traceparent *string) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*traceparent = r.Header.Get("Traceparent")
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return srv, u.Port()
}

func TestSpanTransportAnswered(t *testing.T) {
	var got string
	srv, port := answering(t, 200, &got)
	s := newTraced(t)
	// The default url.full drops the user, the query and the fragment.
	resp, sp, err := s.send(t, "http://user:pw-SECRET@"+strings.TrimPrefix(srv.URL, "http://")+"/items?key=k-SECRET#frag")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer %v, %v", resp, err)
	}
	if sp.Name() != "GET" || sp.SpanKind() != trace.SpanKindClient {
		t.Errorf("span %q of kind %v, want a client span GET", sp.Name(), sp.SpanKind())
	}
	want := "http.request.method=GET url.full=http://127.0.0.1:" + port + "/items server.address=127.0.0.1 server.port=" + port +
		" http.response.status_code=200"
	if a := attrs(sp); a != want {
		t.Errorf("attributes\n%s\nwant\n%s", a, want)
	}
	if sp.Status().Code != codes.Unset {
		t.Errorf("status %v, want unset", sp.Status())
	}
	if sp.Parent().SpanID() != s.caller.SpanContext().SpanID() {
		t.Errorf("the client span is not a child of the caller's")
	}
	wantTP := "00-" + sp.SpanContext().TraceID().String() + "-" + sp.SpanContext().SpanID().String() + "-01"
	if got != wantTP {
		t.Errorf("the server got traceparent %q, want the client span's %q", got, wantTP)
	}
}

func TestSpanTransportServerError(t *testing.T) {
	var got string
	srv, port := answering(t, 500, &got)
	s := newTraced(t)
	resp, sp, err := s.send(t, srv.URL+"/items")
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("answer %v, %v", resp, err)
	}
	want := "http.request.method=GET url.full=" + srv.URL + "/items server.address=127.0.0.1 server.port=" + port +
		" http.response.status_code=500 error.type=500"
	if a := attrs(sp); a != want {
		t.Errorf("attributes\n%s\nwant\n%s", a, want)
	}
	if sp.Status().Code != codes.Error || sp.Status().Description != "" {
		t.Errorf("status %v, want an error with no description", sp.Status())
	}
	if got == "" {
		t.Errorf("no traceparent sent")
	}
}

// refused is a URL on 127.0.0.1 that no one listens on.
func refused(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/items"
}

func TestSpanTransportRefused(t *testing.T) {
	s := newTraced(t)
	u := refused(t)
	_, sp, err := s.send(t, u)
	if err == nil {
		t.Fatal("a refused connection was answered")
	}
	port := u[strings.LastIndex(u, ":")+1 : strings.LastIndex(u, "/")]
	want := "http.request.method=GET url.full=" + u + " server.address=127.0.0.1 server.port=" + port + " error.type=transport"
	if a := attrs(sp); a != want {
		t.Errorf("attributes\n%s\nwant\n%s", a, want)
	}
	if sp.Status().Code != codes.Error || sp.Status().Description != err.Error() {
		t.Errorf("status %v, want an error saying %q", sp.Status(), err)
	}
}

// The hooks: the caller's URL, attributes, description of an error and
// reaction to the answer.
func TestSpanTransportHooks(t *testing.T) {
	var got string
	srv, _ := answering(t, 401, &got)
	s := newTraced(t)
	var answered []string
	s.tr.URL = func(req *http.Request) string { return "the caller's " + req.URL.Path }
	s.tr.ExtraAttributes = 1
	s.tr.Attributes = func(req *http.Request, a []attribute.KeyValue) []attribute.KeyValue {
		return append(a, attribute.String("caller.attribute", req.Method))
	}
	s.tr.Unanswered = func(err error) string { return "not answered" }
	s.tr.Answered = func(req *http.Request, resp *http.Response) {
		// The request as given: its context holds the caller's span.
		if trace.SpanFromContext(req.Context()) != s.caller {
			t.Errorf("Answered is not given the caller's span")
		}
		answered = append(answered, strconv.Itoa(resp.StatusCode))
	}
	_, sp, _ := s.send(t, srv.URL+"/items?q=1")
	want := "http.request.method=GET url.full=the caller's /items server.address=127.0.0.1 server.port=" +
		srv.URL[strings.LastIndex(srv.URL, ":")+1:] + " caller.attribute=GET http.response.status_code=401 error.type=401"
	if a := attrs(sp); a != want {
		t.Errorf("attributes\n%s\nwant\n%s", a, want)
	}
	if strings.Join(answered, ",") != "401" {
		t.Errorf("Answered called with %v, want once with 401", answered)
	}

	s.spans.Reset()
	answered = nil
	_, sp, err := s.send(t, refused(t))
	if err == nil || sp.Status().Description != "not answered" || sp.Status().Code != codes.Error {
		t.Errorf("status %v, want Unanswered's description", sp.Status())
	}
	if answered != nil {
		t.Errorf("Answered called for a request not answered")
	}
}

func TestPort(t *testing.T) {
	for raw, want := range map[string]int{"http://h/": 80, "https://h/": 443, "http://h:8080/": 8080, "https://h:8443/": 8443} {
		req, _ := http.NewRequest("GET", raw, nil)
		if got := port(req); got != want {
			t.Errorf("port(%s) = %d, want %d", raw, got, want)
		}
	}
}
