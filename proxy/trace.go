package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"

	"github.com/authproxy/authproxy/outbound"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing (docs/tracing.md): with Options.TracerProvider set, each request
// is a server span, continuing the client's traceparent if it sent one;
// each attempt upstream is a client span that carries the traceparent on
// (outbound.SpanTransport, with proxy's attributes);
// the replay after a 401 is a span of its own around its fresh token and
// its second attempt; and the server span ends with the row of the
// failures table the request failed with, if any. auth adds the spans of
// the token (see auth/trace.go). Off, nothing here runs beyond a nil
// check, and no allocation is added.
//
// No header value, query string or body is recorded: the path as the
// access log has it, the status, the failure's code and detail (texts
// that hold no secret, see errorBody).

// TracerName is the instrumentation scope of proxy's spans.
const TracerName = "github.com/authproxy/authproxy/proxy"

// SpanReplay is the name of the span of a replay.
const SpanReplay = "authproxy.replay"

// Attribute keys of proxy's spans.
const (
	attrMethod       = attribute.Key("http.request.method")
	attrStatus       = attribute.Key("http.response.status_code")
	attrPath         = attribute.Key("url.path")
	attrScheme       = attribute.Key("url.scheme")
	attrClientAddr   = attribute.Key("client.address")
	attrResendCount  = attribute.Key("http.request.resend_count")
	attrErrorType    = attribute.Key("error.type")
	attrUpstream     = attribute.Key("authproxy.upstream")
	attrError        = attribute.Key("authproxy.error")
	attrFault        = attribute.Key("authproxy.fault")
	attrErrorReason  = attribute.Key("authproxy.error.reason")
	attrReplay       = attribute.Key("authproxy.replay")
	attrReplayReason = attribute.Key("authproxy.replay.reason")
	attrReplaySkip   = attribute.Key("authproxy.replay_skipped")
)

// handlerTracer is a Handler's tracing; the zero value is off.
type handlerTracer struct {
	tracer trace.Tracer // nil: off
}

func newHandlerTracer(tp trace.TracerProvider) handlerTracer {
	if _, noop := tp.(noop.TracerProvider); tp == nil || noop {
		return handlerTracer{}
	}
	return handlerTracer{tracer: tp.Tracer(TracerName)}
}

// start returns r's context with the request's server span in it: a
// child of the client's traceparent, if it sent one. Off, r's context.
func (t handlerTracer) start(r *http.Request) context.Context {
	if t.tracer == nil {
		return r.Context()
	}
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	// One slice, made large enough: each growth would be an allocation.
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, attrMethod.String(r.Method), attrPath.String(r.URL.Path), attrScheme.String("http"))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, attrClientAddr.String(host))
	}
	ctx, _ = t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return ctx
}

// end ends r's server span with what the access log says of it: the
// status, the upstream, the replay, and the failure's row.
func (t handlerTracer) end(r *http.Request, info *requestInfo, status int, f Failure) {
	span := trace.SpanFromContext(r.Context())
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, attrStatus.Int(status))
	if info.upstream != "" {
		span.SetName(r.Method + " " + info.upstream)
		attrs = append(attrs, attrUpstream.String(info.upstream))
	}
	if info.replay != "" {
		attrs = append(attrs, attrReplay.String(info.replay))
	}
	if skip := info.replaySkipped(); skip != "" {
		attrs = append(attrs, attrReplaySkip.String(skip))
	}
	if info.fail != failNone {
		attrs = append(attrs, attrError.String(f.Code), attrFault.String(string(f.Fault)),
			attrErrorReason.String(f.Reason), attrErrorType.String(f.Code))
		// A client's own mistake is not the server's error (as 4xx on a
		// server span are not, in OpenTelemetry's HTTP conventions).
		if f.Fault != FaultClient {
			span.SetStatus(codes.Error, info.err.Error())
		}
	} else if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.SetAttributes(attrs...)
	span.End()
}

// route makes the attempts of rp's transport client spans (outbound's,
// with proxy's attributes).
func (t handlerTracer) route(rp *httputil.ReverseProxy) {
	tt, ok := rp.Transport.(*tokenTransport)
	if t.tracer == nil || !ok {
		return
	}
	tt.tracer = t.tracer
	// The requests are the transport's own (see tokenTransport.RoundTrip):
	// their headers may be set. url.full is outbound's default, the URL
	// without its query, which may carry keys (as the access log leaves
	// it out).
	tt.base = &outbound.SpanTransport{Base: tt.base, Tracer: t.tracer,
		ExtraAttributes: 3, Attributes: attemptAttributes(tt.upstream)}
}

// noSpan is what startReplay returns with tracing off.
var noSpan = trace.SpanFromContext(context.Background())

type replayKey struct{}

// startReplay starts the span of a replay after the rejection status:
// its fresh token and its attempt are its children.
func (t *tokenTransport) startReplay(ctx context.Context, status int) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, noSpan
	}
	reason := "status_" + strconv.Itoa(status)
	ctx = context.WithValue(ctx, replayKey{}, reason)
	return t.tracer.Start(ctx, SpanReplay, trace.WithAttributes(attrReplayReason.String(reason), attrUpstream.String(t.upstream)))
}

// endReplay records the replay's outcome: "success", "rejected" or
// "error".
func endReplay(span trace.Span, outcome string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrReplay.String(outcome))
	if outcome != "success" {
		span.SetStatus(codes.Error, outcome)
	}
}

// attemptAttributes appends what proxy's client span of an attempt
// says beyond outbound's: the upstream and, on a replay, the resend count
// and its reason.
func attemptAttributes(upstream string) func(*http.Request, []attribute.KeyValue) []attribute.KeyValue {
	return func(req *http.Request, attrs []attribute.KeyValue) []attribute.KeyValue {
		attrs = append(attrs, attrUpstream.String(upstream))
		if reason, ok := req.Context().Value(replayKey{}).(string); ok {
			attrs = append(attrs, attrResendCount.Int(1), attrReplayReason.String(reason))
		}
		return attrs
	}
}
