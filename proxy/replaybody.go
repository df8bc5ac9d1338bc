package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// teeBody streams a request body to the upstream while keeping a copy of
// up to max bytes, so that the request can be replayed without holding it
// back until the whole body has arrived (store-and-forward would add the
// body's upload time to every request's latency).
//
// The transport reads it from its own goroutine and closes it when done;
// only after done is closed may the copy be looked at.
type teeBody struct {
	src      io.ReadCloser
	max      int64
	buf      []byte
	overflow bool  // more than max was read: no replay
	srcErr   error // a read error other than EOF
	eof      bool
	done     chan struct{}
	closed   bool

	// The copy goes back to copyPool once both the transport has closed
	// the body and the response is closed; after a replay, never (the
	// replay's writer may still be reading it).
	refs     atomic.Int32
	pooled   *[]byte
	replayed bool
}

// copyPool recycles body copies: without it every request with a body
// leaves its copy to the garbage collector, which on a busy proxy costs
// more than the copying.
var copyPool = sync.Pool{New: func() any { return new([]byte) }}

func newTeeBody(src io.ReadCloser, limit, sizeHint int64) *teeBody {
	t := &teeBody{src: src, max: limit, done: make(chan struct{})}
	t.refs.Store(2)
	t.pooled = copyPool.Get().(*[]byte)
	if want := min(max(sizeHint, 0), limit); int64(cap(*t.pooled)) < want {
		*t.pooled = make([]byte, 0, want)
	}
	t.buf = (*t.pooled)[:0]
	return t
}

// release drops one of the two holds on the copy.
func (t *teeBody) release() {
	if t.refs.Add(-1) != 0 || t.replayed || t.overflow || int64(cap(t.buf)) > t.max {
		return
	}
	*t.pooled = t.buf[:0]
	copyPool.Put(t.pooled)
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	if !t.overflow {
		if int64(len(t.buf)+n) > t.max {
			t.overflow, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	switch {
	case err == io.EOF:
		t.eof = true
	case err != nil:
		t.srcErr = err
	}
	return n, err
}

// Close is the transport saying it is done with the body. The client's
// body itself stays open: a replay may need the rest of it.
func (t *teeBody) Close() error {
	if !t.closed {
		t.closed = true
		close(t.done)
		t.release()
	}
	return nil
}

// releasingBody releases the tee's copy when the response is closed.
type releasingBody struct {
	io.ReadCloser
	tee  *teeBody
	once sync.Once
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.tee.release)
	return err
}

// complete waits for the transport to release the body and returns the
// whole body for a replay, reading from the client whatever the upstream
// did not. ok is false when the body is over max or could not be read.
func (t *teeBody) complete(ctx context.Context) (body []byte, ok bool) {
	select {
	case <-t.done:
	case <-ctx.Done():
		return nil, false
	}
	t.replayed = true // the copy is handed to the replay: never pooled
	if t.overflow || t.srcErr != nil {
		return nil, false
	}
	if !t.eof {
		rest, err := io.ReadAll(io.LimitReader(t.src, t.max-int64(len(t.buf))+1))
		if err != nil || int64(len(t.buf)+len(rest)) > t.max {
			return nil, false
		}
		t.buf = append(t.buf, rest...)
	}
	return t.buf, true
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
