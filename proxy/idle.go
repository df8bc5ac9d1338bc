package proxy

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// idleTimeoutBody cancels the upstream request when one Read waits longer
// than idle for the upstream. Only time spent waiting on the upstream
// counts: a slow client holding up the copy does not trip it.
type idleTimeoutBody struct {
	io.ReadCloser
	idle   time.Duration
	timer  *time.Timer
	fired  atomic.Bool
	cancel context.CancelFunc
	info   *requestInfo // may be nil
}

func newIdleTimeoutBody(body io.ReadCloser, idle time.Duration, cancel context.CancelFunc, info *requestInfo) *idleTimeoutBody {
	b := &idleTimeoutBody{ReadCloser: body, idle: idle, cancel: cancel, info: info}
	b.timer = time.AfterFunc(idle, func() {
		b.fired.Store(true)
		cancel()
	})
	b.timer.Stop()
	return b
}

func (b *idleTimeoutBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	if err != nil && b.fired.Load() {
		// Say why, rather than the bare context.Canceled that ReverseProxy
		// would not log; the response is then aborted.
		if b.info != nil {
			b.info.errCode = "upstream_idle_timeout"
		}
		return n, fmt.Errorf("upstream sent nothing for %s; response cut off", b.idle)
	}
	return n, err
}

func (b *idleTimeoutBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
