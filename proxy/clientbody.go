package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// clientBody is the client's request body on its way upstream. It marks
// its read errors as the client's (a malformed chunk, a body cut short, a
// stall, a body over the limit), so that they are answered 400, 408 or
// 413 whatever the upstream request that was reading it then reports.
// With a timeout, a body that makes no progress for that long fails,
// rather than holding its connection, its goroutines and its replay copy
// for ever.
type clientBody struct {
	src     io.ReadCloser
	timeout time.Duration       // zero: none
	w       http.ResponseWriter // its connection's read deadline is the timeout
	// limit is the most the body may hold, as http.MaxBytesReader's;
	// zero: no limit. left is what remains of it; -1 once it is passed.
	limit, left int64
	failed      atomic.Pointer[clientBodyError]
}

// clientBodyError is a failure to read the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// init makes the zero b the wrapper of src, limited to limit bytes (zero:
// no limit) and timeout (zero: none) between reads. w must be the
// server's writer itself: the body may be read after the handler has
// returned.
func (b *clientBody) init(src io.ReadCloser, w http.ResponseWriter, limit int64, timeout time.Duration) {
	b.src, b.w, b.limit, b.left, b.timeout = src, w, limit, limit, timeout
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.limit > 0 {
		if b.left < 0 {
			return 0, b.failure()
		}
		if int64(len(p))-1 > b.left {
			p = p[:b.left+1] // one byte more says whether the body goes past
		}
	}
	if b.timeout > 0 {
		// Moved on at each read: the bound is on a stall, not on a slow
		// upload. A server that cannot set deadlines gets no bound.
		if b.setReadDeadline(time.Now().Add(b.timeout)) != nil {
			b.timeout = 0
		}
	}
	n, err := b.src.Read(p)
	if b.limit > 0 {
		if int64(n) <= b.left {
			b.left -= int64(n)
		} else {
			n, b.left = int(b.left), -1
			err = &http.MaxBytesError{Limit: b.limit}
		}
	}
	switch {
	case err == nil:
	case err == io.EOF:
		if b.timeout > 0 {
			// At the body's end net/http starts reading ahead on the
			// connection, to notice the client leaving; under our
			// deadline that read would fail while the upstream is still
			// answering, and cancel the request.
			b.setReadDeadline(time.Time{})
		}
	default:
		e := &clientBodyError{err}
		b.failed.CompareAndSwap(nil, e)
		return n, e
	}
	return n, err
}

func (b *clientBody) Close() error { return b.src.Close() }

// setReadDeadline sets the client connection's read deadline. The
// controller is made at each call, where it stays on the stack.
func (b *clientBody) setReadDeadline(t time.Time) error {
	return http.NewResponseController(b.w).SetReadDeadline(t)
}

// failure is the body's read error, if it failed.
func (b *clientBody) failure() error {
	if e := b.failed.Load(); e != nil {
		return e
	}
	return nil
}
