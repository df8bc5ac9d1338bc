package outbound

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of a client span (OpenTelemetry's HTTP semantic
// conventions).
const (
	attrMethod     = attribute.Key("http.request.method")
	attrStatus     = attribute.Key("http.response.status_code")
	attrURLFull    = attribute.Key("url.full")
	attrServerAddr = attribute.Key("server.address")
	attrServerPort = attribute.Key("server.port")
	attrErrorType  = attribute.Key("error.type")
)

// standardAttributes is how many attributes every client span starts
// with: method, url.full, server.address and server.port.
const standardAttributes = 4

// SpanTransport makes each request sent through Base a client span, named
// by the method, and sends the span's W3C traceparent with it: the one
// place a request leaving authproxy, to an upstream or a token endpoint,
// is traced. auth (token requests) and proxy (upstream attempts) wrap
// their transports in one, each with its own hooks; with tracing off they
// use none.
//
// The span starts with http.request.method, url.full (as URL gives it),
// server.address and server.port, then what Attributes adds. A request
// not answered (Base's error) sets error.type "transport" and an error
// status; an answer sets http.response.status_code, and a status of 400
// or more error.type (the status) and an error status with no
// description.
//
// The request is sent as given, with the traceparent set in its header:
// it must be the caller's own (a clone), as RoundTrip's callers' are.
type SpanTransport struct {
	// Base sends the request; it must not be nil.
	Base http.RoundTripper
	// Tracer starts the spans; it must not be nil.
	Tracer trace.Tracer
	// URL is the request's URL as url.full records it: each caller
	// decides what a URL of its may hold that no span must. Nil is
	// the URL without its user, query and fragment.
	URL func(*http.Request) string
	// ExtraAttributes is how many attributes Attributes appends at most,
	// so that the span's are one slice made once.
	ExtraAttributes int
	// Attributes, if set, appends the caller's own attributes to the
	// standard ones, from the request as given.
	Attributes func(req *http.Request, attrs []attribute.KeyValue) []attribute.KeyValue
	// Unanswered, if set, is the status description of a request Base
	// did not answer, from its error; nil is the error's text. A caller
	// whose errors may hold a secret says something else.
	Unanswered func(err error) string
	// Answered, if set, is called with the request as given (its context
	// holds the caller's span, not the client span) and Base's answer,
	// after the client span has recorded it.
	Answered func(req *http.Request, resp *http.Response)
}

var _ http.RoundTripper = (*SpanTransport)(nil)

// RoundTrip sends req through Base inside a client span.
func (t *SpanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// One slice, made large enough: each growth would be an allocation.
	attrs := make([]attribute.KeyValue, 0, standardAttributes+t.ExtraAttributes)
	attrs = append(attrs, attrMethod.String(req.Method), attrURLFull.String(t.url(req)),
		attrServerAddr.String(req.URL.Hostname()), attrServerPort.Int(port(req)))
	if t.Attributes != nil {
		attrs = t.Attributes(req, attrs)
	}
	ctx, span := t.Tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.Base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.SetAttributes(attrErrorType.String("transport"))
		if t.Unanswered != nil {
			span.SetStatus(codes.Error, t.Unanswered(err))
		} else {
			span.SetStatus(codes.Error, err.Error())
		}
		return resp, err
	}
	span.SetAttributes(attrStatus.Int(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(attrErrorType.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	if t.Answered != nil {
		t.Answered(req, resp)
	}
	return resp, nil
}

func (t *SpanTransport) url(req *http.Request) string {
	if t.URL != nil {
		return t.URL(req)
	}
	u := *req.URL
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	return u.String()
}

// port is the request's server port: the URL's, else the scheme's.
func port(req *http.Request) int {
	if p := req.URL.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if req.URL.Scheme == "https" {
		return 443
	}
	return 80
}
