package auth

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/authproxy/authproxy/outbound"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing (docs/tracing.md): a Cache given a TracerProvider records the
// wait for a token that was not cached (authproxy.token.wait), each fetch
// (authproxy.token.fetch), its request to the token endpoint (a client
// span) and, with a Shared store, the fleet lock and store reads. A cache
// hit is an attribute of the caller's span, not a span: the hot path
// stays one atomic load. Without a TracerProvider none of this runs.
//
// Nothing secret is recorded: no token, secret, assertion or key, and the
// token endpoint's URL without its query (see endpointURL).

// TracerName is the instrumentation scope of auth's spans.
const TracerName = "github.com/authproxy/authproxy/auth"

// Span names, for docs/tracing.md and the tests.
const (
	SpanTokenWait     = "authproxy.token.wait"
	SpanTokenFetch    = "authproxy.token.fetch"
	SpanSharedLoad    = "authproxy.shared.load"
	SpanSharedLock    = "authproxy.shared.lock"
	SpanSharedPut     = "authproxy.shared.put"
	SpanSharedRelease = "authproxy.shared.release"
	SpanSharedReject  = "authproxy.shared.reject"
)

// cacheTracer is a Cache's tracing; its zero value is off.
type cacheTracer struct {
	tracer trace.Tracer // nil: off
	// What the fetch spans say of the source; set by NewSource.
	upstream, grant, clientAuth string
	// flight is the last fetch started, for the waiters that shared it
	// to link to.
	flight atomic.Pointer[flightSpan]
}

// flightSpan is one fetch's span, as its waiters see it.
type flightSpan struct {
	span   trace.SpanContext
	parent trace.SpanID // the wait span of the caller that started it
	done   atomic.Bool
}

func (t *cacheTracer) init(tp trace.TracerProvider) {
	// A noop provider is off too: its spans would cost what they record.
	if _, noop := tp.(noop.TracerProvider); tp != nil && !noop {
		t.tracer = tp.Tracer(TracerName)
	}
}

// traceAs names the source in the fetch spans.
func (c *Cache) traceAs(upstream string, grant GrantType, method AuthMethod) {
	if grant == "" {
		grant = GrantClientCredentials
	}
	if method == "" {
		method = ClientSecretPost
	}
	c.trace.upstream, c.trace.grant, c.trace.clientAuth = upstream, string(grant), string(method)
}

// Attribute keys of auth's spans.
const (
	attrCache        = attribute.Key("authproxy.token.cache") // "hit" or "miss"
	attrReason       = attribute.Key("authproxy.token.reason")
	attrSharedFetch  = attribute.Key("authproxy.token.shared_fetch")
	attrUpstream     = attribute.Key("authproxy.upstream")
	attrGrant        = attribute.Key("authproxy.token.grant")
	attrClientAuth   = attribute.Key("authproxy.token.client_auth")
	attrRetryCount   = attribute.Key("authproxy.token.retry_count")
	attrStatus       = attribute.Key("authproxy.token.endpoint_status")
	attrBackoff      = attribute.Key("authproxy.token.backoff_ms")
	attrFound        = attribute.Key("authproxy.shared.found")
	attrAcquired     = attribute.Key("authproxy.shared.acquired")
	attrTokenSpanOut = attribute.Key("authproxy.token.fetch_outcome")
)

// cacheHit is a slice made once: SetAttributes(kv) with a new one would
// allocate it for every request served from the cache.
var cacheHit = []attribute.KeyValue{attrCache.String("hit")}

// hit marks the caller's span as served from the cache.
func (t *cacheTracer) hit(ctx context.Context) {
	trace.SpanFromContext(ctx).SetAttributes(cacheHit...)
}

// tracedWait is wait inside a span of its own. A caller that joined a
// fetch another started links to that fetch's span: the fetch is not its
// child, as it runs detached from any one caller.
func (c *Cache) tracedWait(ctx context.Context, reason string) (*Token, error) {
	t := &c.trace
	if t.tracer == nil {
		return c.wait(ctx, reason)
	}
	before := t.flight.Load()
	running := before != nil && !before.done.Load()
	ctx, span := t.tracer.Start(ctx, SpanTokenWait, trace.WithAttributes(attrCache.String("miss"), attrReason.String(reason)))
	defer span.End()
	tok, err := c.wait(ctx, reason)
	if f := t.flight.Load(); f != nil && (f != before || running) && f.parent != span.SpanContext().SpanID() {
		span.AddLink(trace.Link{SpanContext: f.span})
		span.SetAttributes(attrSharedFetch.Bool(true))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return tok, err
}

// tracedFetch is fetch inside a span of its own: a child of the wait of
// the caller that started it, or a root for a background refresh.
func (c *Cache) tracedFetch(ctx context.Context, reason string) (*Token, error) {
	t := &c.trace
	if t.tracer == nil {
		return c.fetch(ctx, reason)
	}
	c.mu.Lock()
	retries := c.failures
	c.mu.Unlock()
	parent := trace.SpanContextFromContext(ctx).SpanID()
	ctx, span := t.tracer.Start(ctx, SpanTokenFetch, trace.WithAttributes(
		attrReason.String(reason), attrUpstream.String(t.upstream), attrGrant.String(t.grant),
		attrClientAuth.String(t.clientAuth), attrRetryCount.Int(retries)))
	defer span.End()
	f := &flightSpan{span: span.SpanContext(), parent: parent}
	t.flight.Store(f)
	defer f.done.Store(true)
	tok, err := c.fetch(ctx, reason)
	if err != nil {
		var re *RetrieveError
		if errors.As(err, &re) {
			span.SetAttributes(attrStatus.Int(re.StatusCode))
		}
		var be *BackoffError
		if errors.As(err, &be) {
			span.SetAttributes(attrBackoff.Int64(be.Wait.Milliseconds()))
		}
		span.SetAttributes(attrTokenSpanOut.String("error"))
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attrTokenSpanOut.String("ok"))
	}
	return tok, err
}

// traceTokenEndpoint wraps hc so that each token request is a client
// span and carries the W3C traceparent. hc is not changed: it may be
// shared.
func traceTokenEndpoint(hc *http.Client, tp trace.TracerProvider) *http.Client {
	if _, noop := tp.(noop.TracerProvider); tp == nil || noop || hc == nil {
		return hc
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	traced := *hc
	// The requests are our own (built by newRequest for each attempt):
	// their headers may be set.
	traced.Transport = &outbound.SpanTransport{Base: base, Tracer: tp.Tracer(TracerName),
		URL: endpointURL, Unanswered: endpointUnanswered, Answered: markFetch}
	return &traced
}

// Hooks of the token requests' client spans (see traceTokenEndpoint).

// endpointUnanswered is the status of a token request not answered: the
// fetch span has the error, redacted; here only its kind.
func endpointUnanswered(error) string { return "the token request was not answered" }

// markFetch records the token endpoint's status on the fetch span the
// request was made in.
func markFetch(req *http.Request, resp *http.Response) {
	trace.SpanFromContext(req.Context()).SetAttributes(attrStatus.Int(resp.StatusCode))
}

// endpointURL is the request's URL without its query (as the logs write
// it): a token URL may carry an API key in it, or in a password.
func endpointURL(req *http.Request) string { return redactURL(req.URL.String()) }
