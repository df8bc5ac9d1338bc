package proxy

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// upstreamBody is the upstream's response body on its way to the client.
// It notes in the request's info when the body ends before its end: cut
// off for idling, or truncated by the upstream (a connection closed short
// of its Content-Length, a broken chunked encoding), which the client
// sees only as a broken connection and the access log would otherwise
// report as a clean answer.
//
// With an idle timeout it also cancels the upstream request when one
// Read waits longer than idle for the upstream. Only time spent waiting on
// the upstream counts: a slow client holding up the copy does not trip it.
type upstreamBody struct {
	io.ReadCloser
	ctx    context.Context // the client's request: done when it left
	length int64           // the declared length; -1: unknown
	info   *requestInfo    // may be nil
	idle   time.Duration   // zero: none, and timer is nil
	timer  *time.Timer
	fired  atomic.Bool
	cancel context.CancelFunc
}

func newUpstreamBody(ctx context.Context, body io.ReadCloser, length int64, idle time.Duration, cancel context.CancelFunc, info *requestInfo) *upstreamBody {
	b := &upstreamBody{ReadCloser: body, ctx: ctx, length: length, info: info, idle: idle, cancel: cancel}
	if idle > 0 {
		b.timer = time.AfterFunc(idle, func() {
			b.fired.Store(true)
			cancel()
		})
		b.timer.Stop()
	}
	return b
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.timer != nil {
		b.timer.Reset(b.idle)
	}
	n, err := b.ReadCloser.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	switch {
	case b.fired.Load():
		// Say why, rather than the bare context.Canceled that ReverseProxy
		// would not log; the response is then aborted.
		if b.info != nil {
			b.info.fail = failUpstreamIdle
		}
		return n, fmt.Errorf("upstream sent nothing for %s; response cut off", b.idle)
	case b.ctx.Err() == nil && b.info != nil && b.info.fail == failNone:
		// The client is still there: the upstream broke off.
		b.info.fail, b.info.err, b.info.truncated = failUpstreamTruncated, err, true
		b.info.expectedBytes = b.length
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
