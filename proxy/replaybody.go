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

// copyingBody is a request body on its way upstream that keeps a copy of
// itself as it streams (replayCopy), so that the request can be replayed
// without holding it back until the whole body has arrived
// (store-and-forward would add the body's upload time to every request's
// latency).
//
// The transport reads it from one goroutine of its own and closes it when
// done, possibly from another goroutine, during a read, and possibly
// after RoundTrip has returned: net/http's transport writes a body from
// its write loop, which may still be in a Read when the answer is back.
// Only after done is closed may the copy be looked at. On a connection
// dialled through WithPooledCopy the transport has it write itself
// (writeTo): the client's bytes are read straight into the copy and
// written upstream from there, with no copy made of them.
type copyingBody struct {
	src  io.ReadCloser
	done chan struct{} // closed once the transport has closed it and no read of its is under way

	// mu guards the rest: a transport may close a body, and the response
	// be released, while its write loop is still in a Read.
	mu     sync.Mutex
	kept   replayCopy
	srcErr error // a read error other than EOF
	eof    bool
	closed bool // the transport has closed it
	// reading: a Read or writeTo of the transport is under way, and may
	// be reading into the copy, or writing from it, outside mu. Until it
	// ends, the copy goes back neither to the pool nor to a replay (done
	// stays open): end does what Close and release had to leave.
	reading bool
}

// errReadAfterClose is a transport reading a request body it has closed.
var errReadAfterClose = errors.New("proxy: read of a request body after its Close")

// init makes the zero b a copying body over src, of size bytes (-1:
// unknown) copied up to limit, or returns false when size cannot be had
// from budget: the body then streams without a copy.
func (b *copyingBody) init(src io.ReadCloser, limit, size int64, budget *ReplayBudget) bool {
	b.src, b.done = src, make(chan struct{})
	return b.kept.init(limit, size, budget)
}

func (b *copyingBody) Read(p []byte) (int, error) {
	if !b.begin() {
		return 0, errReadAfterClose
	}
	defer b.end()
	return b.read(p)
}

// read reads from the client into p, and keeps a copy of what it read.
func (b *copyingBody) read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.mu.Lock()
	b.kept.keep(p[:n])
	b.noteErr(err)
	b.mu.Unlock()
	return n, err
}

// noteErr records how a read of the client's body ended. b.mu is held.
func (b *copyingBody) noteErr(err error) {
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.srcErr = err
	}
}

// writeTo writes the next n bytes of the body to w, as io.CopyN would,
// reading them from the client straight into the copy's spare capacity
// and writing them to w from there: the copy costs nothing. Where the
// copy has no room (a body that grows past its capacity, or over max or
// the budget), the bytes go through a pooled buffer and Read's path. An
// EOF before n bytes ends it without an error, as io.Copy does.
//
// The slice of the copy it reads into is outside b.mu while the read and
// the write are under way: b.reading keeps the copy from the pool and
// from a replay until it returns.
func (b *copyingBody) writeTo(w io.Writer, n int64) (written int64, err error) {
	if !b.begin() {
		return 0, errReadAfterClose
	}
	defer b.end()
	var scratch []byte
	defer func() {
		if scratch != nil {
			copyBuffers.Put(scratch)
		}
	}()
	for written < n {
		b.mu.Lock()
		p := b.kept.spare(n - written)
		b.mu.Unlock()
		var nr int
		var rerr error
		if p != nil {
			nr, rerr = b.src.Read(p)
			b.mu.Lock()
			b.kept.took(nr)
			b.noteErr(rerr)
			b.mu.Unlock()
		} else {
			if scratch == nil {
				scratch = copyBuffers.Get()
			}
			p = scratch[:min(int64(len(scratch)), n-written)]
			nr, rerr = b.read(p)
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

// begin marks a read of the transport under way; false: the transport has
// closed the body.
func (b *copyingBody) begin() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.reading = true
	return true
}

// end marks the read over, and does what a Close or the last release
// left for it to do meanwhile.
func (b *copyingBody) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	if b.closed { // closed during the read: begin refuses after a Close
		close(b.done)
	}
	if b.kept.refs == 0 {
		b.kept.free()
	}
}

// skipReason says why the body has no copy; "" if it has one.
func (b *copyingBody) skipReason() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kept.skip
}

// Close is the transport saying it is done with the body. The client's
// body itself stays open: a replay may need the rest of it. A transport
// may close a body twice, from two goroutines; the second does nothing.
func (b *copyingBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if !b.reading {
		close(b.done)
	}
	b.mu.Unlock()
	b.release()
	return nil
}

// release drops one of the copy's two holds (the transport's Close, the
// response's Close); the last frees it, unless a read is under way,
// which then does.
func (b *copyingBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.kept.drop() && !b.reading {
		b.kept.free()
	}
}

// complete waits for the transport to close the body, and its last read
// to end, and returns the whole body for a replay, reading from the
// client whatever the upstream did not. ok is false when there is no
// whole copy to replay (over max, over the budget, or the client went
// away); err is the client's body failing meanwhile, which the client is
// answered with. The wait is bounded by ctx, the client's request:
// net/http's transport closes every request body it was given, but may do
// so from its write loop after RoundTrip has returned.
func (b *copyingBody) complete(ctx context.Context) (body []byte, ok bool, err error) {
	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, false, nil
	}
	b.mu.Lock()
	b.kept.replayed = true // the copy is handed to the replay: never pooled
	rest := b.unread()
	b.mu.Unlock()
	if rest {
		scratch := copyBuffers.Get()
		for rest {
			b.read(scratch) // keeps what it reads, or gives the copy up
			b.mu.Lock()
			rest = b.unread()
			b.mu.Unlock()
		}
		copyBuffers.Put(scratch)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.srcErr != nil:
		return nil, false, b.srcErr
	case b.kept.skip != "":
		return nil, false, nil
	}
	return b.kept.buf, true, nil
}

// unread reports whether the client's body has more to read into the
// copy. b.mu is held.
func (b *copyingBody) unread() bool {
	return !b.eof && b.kept.skip == "" && b.srcErr == nil
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
