package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Why a body that could have been replayed streamed without a copy.
const (
	skipMaxBody      = "max_body"
	skipMemoryBudget = "memory_budget"
)

// minCopyGrowth is the least a chunked body's copy grows by, so that a
// body arriving in small chunks does not reallocate at each.
const minCopyGrowth = 16 << 10

// teeBody streams a request body to the upstream while keeping a copy of
// up to max bytes, so that the request can be replayed without holding it
// back until the whole body has arrived (store-and-forward would add the
// body's upload time to every request's latency). The copy's capacity is
// taken from a ReplayBudget as it grows; when the budget or max would be
// passed, the copy is given up and the body streams on without it.
//
// The transport reads it from one goroutine of its own and closes it when
// done, possibly from another goroutine, during a read; only after done is
// closed may the copy be looked at. On a connection dialled through
// WithPooledCopy the transport has it write itself (writeTo): the client's
// bytes are read straight into the copy and written upstream from there,
// with no copy made of them.
type teeBody struct {
	src    io.ReadCloser
	max    int64
	budget *ReplayBudget // nil: bounded by max alone
	done   chan struct{} // closed once the transport has closed it and no read of its is under way

	// mu guards the rest: a transport may close a body, and the response
	// be released, while its write loop is still in a Read.
	mu       sync.Mutex
	buf      []byte
	reserved int64  // the budget taken for buf: its capacity
	skip     string // why there is no copy (skipMaxBody, skipMemoryBudget); "" while there is
	srcErr   error  // a read error other than EOF
	eof      bool
	closed   bool // the transport has closed it
	// reading: a Read or writeTo of the transport is under way, and may
	// be reading into buf, or writing from it, outside mu. Until it ends,
	// buf goes back neither to the pool nor to a replay (done stays
	// open): end does what Close and release had to leave.
	reading bool

	// The copy goes back to copyPool once both the transport has closed
	// the body and the response is closed, and no read is under way;
	// after a replay, never (the replay's writer may still be reading it).
	refs     int
	released bool
	pooled   *[]byte
	replayed bool
}

// errReadAfterClose is a transport reading a request body it has closed.
var errReadAfterClose = errors.New("proxy: read of a request body after its Close")

// init makes the zero t a tee over src, or returns false when size, the
// body's length (-1: unknown), cannot be had from budget: the body then
// streams without a copy.
func (t *teeBody) init(src io.ReadCloser, limit, size int64, budget *ReplayBudget) bool {
	t.src, t.max, t.budget, t.done, t.refs = src, limit, budget, make(chan struct{}), 2
	t.pooled = copyPool.Get().(*[]byte)
	buf := *t.pooled
	switch pooled := int64(cap(buf)); {
	case pooled > 0 && pooled >= size && budget.take(pooled):
		t.reserved = pooled
	case size > 0 && budget.take(size):
		buf, t.reserved = make([]byte, 0, size), size
	case size > 0:
		copyPool.Put(t.pooled)
		return false
	default:
		buf = nil // grows in keep as the body arrives
	}
	t.buf = buf[:0]
	return true
}

func (t *teeBody) Read(p []byte) (int, error) {
	if !t.begin() {
		return 0, errReadAfterClose
	}
	defer t.end()
	return t.read(p)
}

// read reads from the client into p, and keeps a copy of what it read.
func (t *teeBody) read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.mu.Lock()
	if t.skip == "" && !t.released {
		t.keep(p[:n])
	}
	t.noteErr(err)
	t.mu.Unlock()
	return n, err
}

// noteErr records how a read of the client's body ended. t.mu is held.
func (t *teeBody) noteErr(err error) {
	switch {
	case err == io.EOF:
		t.eof = true
	case err != nil:
		t.srcErr = err
	}
}

// writeTo writes the next n bytes of the body to w, as io.CopyN would,
// reading them from the client straight into the copy's spare capacity
// and writing them to w from there: the copy costs nothing. Where the
// copy has no room (a body that grows past its capacity, or over max or
// the budget), the bytes go through a pooled buffer and Read's path. An
// EOF before n bytes ends it without an error, as io.Copy does.
//
// The slice of buf it reads into is outside t.mu while the read and the
// write are under way: t.reading keeps buf from the pool and from a
// replay until it returns.
func (t *teeBody) writeTo(w io.Writer, n int64) (written int64, err error) {
	if !t.begin() {
		return 0, errReadAfterClose
	}
	defer t.end()
	var scratch []byte
	defer func() {
		if scratch != nil {
			copyBuffers.Put(scratch)
		}
	}()
	for written < n {
		t.mu.Lock()
		p := t.spare(n - written)
		t.mu.Unlock()
		var nr int
		var rerr error
		if p != nil {
			nr, rerr = t.src.Read(p)
			t.mu.Lock()
			t.buf = t.buf[:len(t.buf)+nr] // within cap and max: spare saw to that
			t.noteErr(rerr)
			t.mu.Unlock()
		} else {
			if scratch == nil {
				scratch = copyBuffers.Get()
			}
			p = scratch[:min(int64(len(scratch)), n-written)]
			nr, rerr = t.read(p)
		}
		if nr > 0 {
			nw, werr := w.Write(p[:nr])
			written += int64(nw)
			switch {
			case werr != nil:
				return written, werr
			case nw != nr:
				return written, io.ErrShortWrite
			}
		}
		switch {
		case rerr == io.EOF:
			return written, nil
		case rerr != nil:
			return written, rerr
		}
	}
	return written, nil
}

// spare is the copy's room for the next read to go straight into, at
// most n bytes and never past max; nil when there is no copy or no room.
// t.mu is held.
func (t *teeBody) spare(n int64) []byte {
	if t.skip != "" || t.released {
		return nil
	}
	room := min(int64(cap(t.buf)), t.max) - int64(len(t.buf))
	if room <= 0 {
		return nil
	}
	return t.buf[len(t.buf) : len(t.buf)+int(min(room, n))]
}

// begin marks a read of the transport under way; false: the transport has
// closed the body.
func (t *teeBody) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.reading = true
	return true
}

// end marks the read over, and does what a Close or the last release
// left for it to do meanwhile.
func (t *teeBody) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reading = false
	if t.closed { // closed during the read: begin refuses after a Close
		close(t.done)
	}
	if t.refs == 0 {
		t.free()
	}
}

// keep appends b to the copy, growing it within max and the budget, or
// gives the copy up. t.mu is held.
func (t *teeBody) keep(b []byte) {
	need := int64(len(t.buf) + len(b))
	if need > t.max {
		t.giveUp(skipMaxBody)
		return
	}
	if c := int64(cap(t.buf)); need > c {
		grown := min(max(2*c, need, minCopyGrowth), t.max)
		if !t.budget.take(grown - t.reserved) {
			t.giveUp(skipMemoryBudget)
			return
		}
		t.reserved = grown
		t.buf = append(make([]byte, 0, grown), t.buf...)
	}
	t.buf = append(t.buf, b...)
}

// giveUp drops the copy for reason. t.mu is held.
func (t *teeBody) giveUp(reason string) {
	t.skip, t.buf = reason, nil
	t.budget.give(t.reserved)
	t.reserved = 0
}

// skipReason says why the body has no copy; "" if it has one.
func (t *teeBody) skipReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skip
}

// Close is the transport saying it is done with the body. The client's
// body itself stays open: a replay may need the rest of it. A transport
// may close a body twice, from two goroutines; the second does nothing.
func (t *teeBody) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	if !t.reading {
		close(t.done)
	}
	t.mu.Unlock()
	t.release()
	return nil
}

// release drops one of the two holds on the copy; the last frees it,
// unless a read is under way, which then does.
func (t *teeBody) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refs--; t.refs == 0 && !t.reading {
		t.free()
	}
}

// free returns the copy's share of the budget and, unless a replay has
// it, the copy to the pool. t.mu is held; no read is under way.
func (t *teeBody) free() {
	t.released = true
	t.budget.give(t.reserved)
	t.reserved = 0
	if t.skip == "" && !t.replayed && int64(cap(t.buf)) <= t.max {
		*t.pooled = t.buf[:0]
		copyPool.Put(t.pooled)
	}
	t.buf = nil
}

// complete waits for the transport to close the body, and its last read
// to end, and returns the
// whole body for a replay, reading from the client whatever the upstream
// did not. ok is false when there is no whole copy to replay (over max,
// over the budget, or the client went away); err is the client's body
// failing meanwhile, which the client is answered with.
func (t *teeBody) complete(ctx context.Context) (body []byte, ok bool, err error) {
	select {
	case <-t.done:
	case <-ctx.Done():
		return nil, false, nil
	}
	t.mu.Lock()
	t.replayed = true // the copy is handed to the replay: never pooled
	rest := !t.eof && t.skip == "" && t.srcErr == nil
	t.mu.Unlock()
	if rest {
		scratch := copyBuffers.Get()
		for rest {
			t.read(scratch) // keeps what it reads, or gives the copy up
			t.mu.Lock()
			rest = !t.eof && t.skip == "" && t.srcErr == nil
			t.mu.Unlock()
		}
		copyBuffers.Put(scratch)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.srcErr != nil:
		return nil, false, t.srcErr
	case t.skip != "":
		return nil, false, nil
	}
	return t.buf, true, nil
}

// maxKeptRejection bounds the rejected answer kept in memory while the
// proxy decides whether it can replay; a larger one goes back unreplayed.
const maxKeptRejection = 64 << 10

// keepResponse holds a rejected answer so that it can still be sent to
// the client if the replay turns out impossible. Each wait for the
// upstream is bounded by idle, as the body's on its way to the client
// would be (zero: not bounded): the client has had nothing yet, so one
// that stalls is an error, a *heldIdleError, not an answer cut off.
func keepResponse(resp *http.Response, idle time.Duration, timers *idleTimers) (_ *http.Response, kept bool, _ error) {
	var r io.Reader = resp.Body
	var watch *idleWatch
	if idle > 0 {
		watch = &idleWatch{src: resp.Body, idle: idle, timer: timers.get()}
		defer timers.put(watch.timer)
		r = watch
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeptRejection+1))
	if watch != nil && watch.fired {
		resp.Body.Close()
		return nil, false, &heldIdleError{idle: idle, status: resp.StatusCode}
	}
	if err != nil || len(b) > maxKeptRejection {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		return resp, false, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, true, nil
}
