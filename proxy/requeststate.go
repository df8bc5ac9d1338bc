package proxy

import (
	"context"
	"net/http"
	"time"
)

// A request's state is made once, by Handler.serve, before anything else
// looks at the request, and travels in its context (stateContext): every
// way in (the proxy's own listener, the forward proxy, its tunnels) goes
// through serve, and the transport, the bodies and the error writer run
// below it. So everything from the transport down may take it as there;
// a test that runs the transport on its own gives its request a state as
// serve does (withRequestState in the tests).
//
// What belongs to one request and to no one else lives here: a trace's
// server span is in the context the state wraps (handlerTracer.start), so
// the transport's spans are its children. A DPoP nonce is the upstream
// server's, not the request's: it lives with the key (auth.DPoPKey), and
// the proof made from it for this request goes into the request's header
// (requestHeader.set).

// requestState is the proxy's own bookkeeping of one request, made in one
// allocation (of 256 bytes: keep it under): what the access log and the
// metrics report (info), the recorder of the answer, the wrapper of the
// upstream's answer, and the context through which the transport and the
// error writer find them. Nothing in it is pooled: a request body's Read
// may outlive the handler (net/http's transport writes bodies from a
// goroutine of its own), and the garbage collector then keeps what it
// reaches.
type requestState struct {
	ctx   stateContext
	start time.Time
	info  requestInfo
	rec   responseRecorder
	body  upstreamBody
}

// newRequestState is the state of a request with the context ctx.
func newRequestState(ctx context.Context, start time.Time) *requestState {
	st := &requestState{start: start}
	st.ctx = stateContext{Context: ctx, st: st}
	return st
}

// requestInfo collects what the access log reports of one request; the
// transport and the error writer fill it in through the context.
type requestInfo struct {
	upstream string
	// host is, through the forward proxy, the host:port the request
	// named; its mode is below, in what would be padding.
	host string
	// replay is "" when the request was not replayed, else its outcome
	// as the transport saw it: "success", "rejected" or "error".
	replay string
	// err is what went wrong, if anything; fail says what kind of
	// failure it is.
	err error
	// bodies are the client's request body's wrapper and replay copy;
	// nil without a body.
	bodies *requestBodies
	// replaySkip says why the body has no replay copy when it could
	// have had one.
	replaySkip string
	// expectedBytes is the length a truncated answer had declared (-1:
	// none).
	expectedBytes int64
	fail          failureKind
	mode          Mode // the way the request came in
	// truncated: the upstream's body ended before its end.
	truncated bool
}

// clientBody is the request's body wrapper; nil without a body.
func (info *requestInfo) clientBody() *clientBody {
	if info.bodies == nil {
		return nil
	}
	return &info.bodies.client
}

// replaySkipped says why the request's body streamed without a copy
// although it could have been replayed; "" if it had one or needed none.
func (info *requestInfo) replaySkipped() string {
	if info.bodies != nil && info.bodies.copyOn {
		return info.bodies.copying.skipReason()
	}
	return info.replaySkip
}

// requestBodies are the request body's wrapper and its replay copy, made
// only for a request with a body.
type requestBodies struct {
	client  clientBody
	copying copyingBody
	copyOn  bool // copying keeps the body's replay copy
}

// wrapBody makes the bodies of r, if it has a body, and wraps it as the
// client's (see clientBody), limited to limit bytes and timeout between
// reads, written to w. A body of length zero is none: ReverseProxy sends
// none, and the transport then finds no body to keep.
func (st *requestState) wrapBody(r *http.Request, w http.ResponseWriter, limit int64, timeout time.Duration) {
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		st.info.bodies = &requestBodies{}
		body := &st.info.bodies.client
		body.init(r.Body, w, limit, timeout)
		r.Body = body
	}
}

// stateContext is the request's context with its requestState attached:
// what context.WithValue would make, without an allocation of its own.
// Done, Err and Deadline are the client's request's, so that net/http and
// the context package see through it as through WithValue's.
type stateContext struct {
	context.Context
	st *requestState
}

type stateKey struct{}

func (c *stateContext) Value(key any) any {
	if key == (stateKey{}) {
		return c.st
	}
	return c.Context.Value(key)
}

// stateFrom is the state of the request whose context is ctx. Every
// request the proxy handles has one (see above); a context without one
// is a bug, and panics here rather than further on.
func stateFrom(ctx context.Context) *requestState {
	return ctx.Value(stateKey{}).(*requestState)
}

// infoFrom is the info of the request whose context is ctx.
func infoFrom(ctx context.Context) *requestInfo {
	return &stateFrom(ctx).info
}
