package proxy

import (
	"context"
	"io"
	"time"
)

// idleTimeoutBody cancels the upstream request when one Read waits longer
// than idle for the upstream. Only time spent waiting on the upstream
// counts: a slow client holding up the copy does not trip it.
type idleTimeoutBody struct {
	io.ReadCloser
	idle   time.Duration
	timer  *time.Timer
	cancel context.CancelFunc
}

func newIdleTimeoutBody(body io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleTimeoutBody {
	t := time.AfterFunc(idle, cancel)
	t.Stop()
	return &idleTimeoutBody{ReadCloser: body, idle: idle, timer: t, cancel: cancel}
}

func (b *idleTimeoutBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	return n, err
}

func (b *idleTimeoutBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
