package proxy

import (
	"context"
	"time"
)

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

// requestBodies are the request body's wrapper and its replay copy, made
// only for a request with a body.
type requestBodies struct {
	client clientBody
	tee    teeBody
	teeOn  bool // tee is the body's replay copy
}

// newRequestState is the state of a request with the context ctx.
func newRequestState(ctx context.Context, start time.Time) *requestState {
	st := &requestState{start: start}
	st.ctx = stateContext{Context: ctx, st: st}
	return st
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

// stateFrom finds the request's state; nil outside a Handler (a
// transport used on its own, as in tests).
func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// infoFrom is the request's info; nil outside a Handler.
func infoFrom(ctx context.Context) *requestInfo {
	if st := stateFrom(ctx); st != nil {
		return &st.info
	}
	return nil
}
