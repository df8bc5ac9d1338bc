package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
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
// The transport reads it from its own goroutine and closes it when done;
// only after done is closed may the copy be looked at.
type teeBody struct {
	src    io.ReadCloser
	max    int64
	budget *ReplayBudget // nil: bounded by max alone
	done   chan struct{}
	closed atomic.Bool

	// mu guards the rest: a transport may close a body, and the response
	// be released, while its write loop is still in a Read.
	mu       sync.Mutex
	buf      []byte
	reserved int64  // the budget taken for buf: its capacity
	skip     string // why there is no copy (skipMaxBody, skipMemoryBudget); "" while there is
	srcErr   error  // a read error other than EOF
	eof      bool

	// The copy goes back to copyPool once both the transport has closed
	// the body and the response is closed; after a replay, never (the
	// replay's writer may still be reading it).
	refs     int
	released bool
	pooled   *[]byte
	replayed bool
}

// copyPool recycles body copies: without it every request with a body
// leaves its copy to the garbage collector, which on a busy proxy costs
// more than the copying.
var copyPool = sync.Pool{New: func() any { return new([]byte) }}

// newTeeBody returns a tee over src, or nil when size, the body's length
// (-1: unknown), cannot be had from budget: the body then streams without
// a copy.
func newTeeBody(src io.ReadCloser, limit, size int64, budget *ReplayBudget) *teeBody {
	t := &teeBody{}
	if !t.init(src, limit, size, budget) {
		return nil
	}
	return t
}

// init makes the zero t a tee over src, as newTeeBody does; false: no
// copy can be had.
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
	n, err := t.src.Read(p)
	t.mu.Lock()
	if t.skip == "" && !t.released {
		t.keep(p[:n])
	}
	switch {
	case err == io.EOF:
		t.eof = true
	case err != nil:
		t.srcErr = err
	}
	t.mu.Unlock()
	return n, err
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
	if t.closed.CompareAndSwap(false, true) {
		close(t.done)
		t.release()
	}
	return nil
}

// release drops one of the two holds on the copy; the last returns its
// share of the budget and, unless a replay has it, the copy to the pool.
func (t *teeBody) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refs--; t.refs != 0 {
		return
	}
	t.released = true
	t.budget.give(t.reserved)
	t.reserved = 0
	if t.skip == "" && !t.replayed && int64(cap(t.buf)) <= t.max {
		*t.pooled = t.buf[:0]
		copyPool.Put(t.pooled)
	}
	t.buf = nil
}

// complete waits for the transport to release the body and returns the
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
			t.Read(scratch) // keeps what it reads, or gives the copy up
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

// keptResponse holds a rejected answer so that it can still be sent to
// the client if the replay turns out impossible.
func keepResponse(resp *http.Response) (*http.Response, bool) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeptRejection+1))
	if err != nil || len(b) > maxKeptRejection {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		return resp, false
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, true
}
