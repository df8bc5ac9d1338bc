package proxy

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// upstreamBody is the upstream's response body on its way to the client.
// It notes in the request's info when the body ends before its end: cut
// off for idling, or truncated by the upstream (a connection closed short
// of its Content-Length, a broken chunked encoding), which the client
// sees only as a broken connection and the access log would otherwise
// report as a clean answer.
//
// With an idle timeout it closes the upstream's body when one Read waits
// longer than idle for the upstream, which makes that Read fail (net/http
// allows a Close during a Read, for HTTP/1 and HTTP/2 bodies alike, and
// drops the connection). Only time spent waiting on the upstream counts:
// a slow client holding up the copy does not trip it.
//
// ReverseProxy reads and closes it from the handler's goroutine only.
type upstreamBody struct {
	src    io.ReadCloser
	st     *requestState // its client's request
	length int64         // the declared length; -1: unknown
	idle   time.Duration // zero: none
	timers *idleTimers
	timer  *idleTimer // lent at the first Read, given back at Close
	closed bool
	// copying, if any, is the request body that keeps the replay copy,
	// whose hold the answer's Close releases.
	copying *copyingBody
}

func (b *upstreamBody) init(st *requestState, src io.ReadCloser, length int64, idle time.Duration, timers *idleTimers) {
	*b = upstreamBody{src: src, st: st, length: length, idle: idle, timers: timers}
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.idle > 0 && b.timer == nil && !b.closed {
		b.timer = b.timers.get()
	}
	if b.timer != nil {
		b.timer.start(b.src, b.idle)
	}
	n, err := b.src.Read(p)
	fired := b.timer != nil && b.timer.stop()
	if err == nil || err == io.EOF {
		return n, err
	}
	info := &b.st.info
	switch {
	case fired:
		// Say why, rather than the bare error of a closed body; the
		// response is then aborted.
		info.fail = failUpstreamIdle
		return n, fmt.Errorf("upstream sent nothing for %s; response cut off", b.idle)
	case b.st.ctx.Err() == nil && info.fail == failNone:
		// The client is still there: the upstream broke off.
		info.fail, info.err, info.truncated = failUpstreamTruncated, err, true
		info.expectedBytes = b.length
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.timer != nil {
		b.timers.put(b.timer)
		b.timer = nil
	}
	b.closed = true
	err := b.src.Close()
	if b.copying != nil {
		b.copying.release()
		b.copying = nil
	}
	return err
}

// idleWatch reads a body the transport reads itself (a rejection, before
// a replay) with upstreamBody's idle timeout: a Read that waits idle for
// the upstream closes src, and fired says so.
type idleWatch struct {
	src   io.ReadCloser
	idle  time.Duration
	timer *idleTimer
	fired bool
}

func (w *idleWatch) Read(p []byte) (int, error) {
	w.timer.start(w.src, w.idle)
	n, err := w.src.Read(p)
	if w.timer.stop() {
		w.fired = true
	}
	return n, err
}

// heldIdleError is an upstream that sent nothing for the idle timeout in
// the body of an answer the proxy held back to decide on a replay: nothing
// of the answer has reached the client, which is told so (504).
type heldIdleError struct {
	idle   time.Duration
	status int
}

func (e *heldIdleError) Error() string {
	return fmt.Sprintf("upstream sent nothing for %s in the body of its %d answer; cut off before a replay", e.idle, e.status)
}

// idleTimers lends idleTimers, each made once with its timer, so that a
// response costs no allocation for its idle timeout.
type idleTimers struct{ pool sync.Pool }

func (p *idleTimers) get() *idleTimer {
	if t, ok := p.pool.Get().(*idleTimer); ok {
		return t
	}
	t := &idleTimer{}
	t.firingDone.L = &t.mu
	t.timer = time.AfterFunc(time.Hour, t.fire)
	t.timer.Stop()
	return t
}

// put takes t back once its body is done with it.
func (p *idleTimers) put(t *idleTimer) {
	if t.armed { // a Read that panicked
		t.stop()
	}
	t.fired = false
	p.pool.Put(t)
}

// idleTimer closes the body whose Read it watches once that Read has
// waited its whole timeout. start and stop are called from the reading
// goroutine only; fire runs on a goroutine of its own.
type idleTimer struct {
	timer *time.Timer // runs fire
	armed bool        // between start and stop

	mu    sync.Mutex
	body  io.Closer // whose Read is under way; nil between Reads
	fired bool      // body was closed for idling
	// late counts the firings stop came too late to prevent, done the
	// firings that have run to their end, the body's Close included: stop
	// waits until done catches up, so that no firing is left over to
	// close a body during a later Read. firingDone (on mu) is
	// signalled as done moves.
	late, done uint64
	firingDone sync.Cond
}

// start watches a Read of body about to begin.
func (t *idleTimer) start(body io.Closer, idle time.Duration) {
	t.mu.Lock()
	t.body = body
	t.mu.Unlock()
	t.armed = true
	t.timer.Reset(idle)
}

// stop ends the watch of a Read that has returned, and says whether the
// body was closed for idling (then, or after an earlier Read: the Read
// that failed on the closed body is the one to say so).
func (t *idleTimer) stop() (fired bool) {
	t.armed = false
	t.mu.Lock()
	defer t.mu.Unlock()
	t.body = nil
	if !t.timer.Stop() {
		// The timer went off: its firing has begun, if it has not run.
		// It finds no body now; wait until it has run, rare as this is.
		// The wait has an owner: time.AfterFunc runs fire on a goroutine
		// of its own once Stop has failed, and fire moves done whatever
		// the body's Close does, so it ends when that Close returns.
		t.late++
		for t.done < t.late {
			t.firingDone.Wait()
		}
	}
	return t.fired
}

func (t *idleTimer) fire() {
	t.mu.Lock()
	body := t.body
	t.body = nil
	if body != nil {
		t.fired = true
	}
	t.mu.Unlock()
	if body != nil {
		body.Close()
	}
	// Counted once the Close is over: a stop that came too late waits for
	// it, so that it cannot land in the Read after the one it was for.
	t.mu.Lock()
	t.done++
	t.mu.Unlock()
	t.firingDone.Broadcast()
}
