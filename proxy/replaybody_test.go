package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The transport may close a request body from two goroutines (its write
// loop and the caller's error path): the second Close must be harmless.
func TestTeeBodyClosedTwiceConcurrently(t *testing.T) {
	for range 100 {
		tee := newTeeBody(io.NopCloser(strings.NewReader("body")), 1<<10, 4, nil)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { tee.Close() })
		}
		wg.Wait()
		tee.release() // the response's hold
		if got := tee.refs; got != 0 {
			t.Fatalf("holds left after two Closes and the response's release: %d, want 0", got)
		}
	}
}

// readerFunc is an io.Reader made of a function.
type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// A body kept for replay is read from the client straight into its copy
// and written upstream from there, through net/http's transport on a
// connection dialled with WithPooledCopy: the 64 KiB copy of each body
// that the copy cost before (issue 16) is not made.
func TestRequestBodyIsReadStraightIntoItsReplayCopy(t *testing.T) {
	const size = 64 << 10
	want := strings.Repeat("0123456789abcdef", size/16)
	got := make(chan string, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer api.Close()

	src := strings.NewReader(want)
	var copyArea []byte // the copy's whole capacity, before any read
	read, inPlace := 0, 0
	tee := newTeeBody(io.NopCloser(readerFunc(func(p []byte) (int, error) {
		if len(p) > 0 && read < len(copyArea) && &p[0] == &copyArea[read] {
			inPlace += min(len(p), src.Len())
		}
		n, err := src.Read(p)
		read += n
		return n, err
	})), 1<<20, size, nil)
	copyArea = tee.buf[:cap(tee.buf)]

	tr := &http.Transport{DialContext: WithPooledCopy((&net.Dialer{}).DialContext)}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest("POST", api.URL, tee)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b := <-got; b != want {
		t.Fatalf("the upstream got %d bytes, not the body's %d", len(b), len(want))
	}
	kept, ok, err := tee.complete(t.Context())
	if !ok || err != nil || string(kept) != want {
		t.Fatalf("the copy: %d bytes, ok %v, err %v; want the whole body", len(kept), ok, err)
	}
	// The transport's bufio.Writer reads the first few KiB into its own
	// buffer, after the request's headers.
	if inPlace < size-8<<10 {
		t.Errorf("%d of %d bytes were read straight into the copy, want all but the first few KiB", inPlace, size)
	}
}

// The copy a read is under way into is not freed while it is: a
// transport may close the body (and the response be released) during a
// read, and the copy given back to the pool then would be written by the
// read while another request used it. It is freed, and the transport's
// Close reported done, when the read returns.
func TestReplayCopyIsNotFreedDuringARead(t *testing.T) {
	const size = 64 << 10
	budget := NewReplayBudget(1 << 20)
	inRead, finish := make(chan struct{}), make(chan struct{})
	tee := newTeeBody(io.NopCloser(readerFunc(func(p []byte) (int, error) {
		close(inRead)
		<-finish
		return copy(p, strings.Repeat("x", len(p))), io.EOF
	})), 1<<20, size, budget)
	taken := budget.InUse()
	wrote := make(chan error, 1)
	go func() {
		_, err := tee.writeTo(io.Discard, size)
		wrote <- err
	}()
	<-inRead
	tee.Close()   // the transport, from its error path
	tee.release() // the response's hold: the last
	if got := budget.InUse(); got != taken {
		t.Errorf("during the read, the budget holds %d bytes for the copy, want %d: the copy was freed", got, taken)
	}
	select {
	case <-tee.done:
		t.Error("done was closed during the read: a replay could take the copy while it is written")
	default:
	}
	close(finish)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	<-tee.done
	if got := budget.InUse(); got != 0 {
		t.Errorf("after the read, the budget holds %d bytes, want 0", got)
	}
}

// Under -race: copies freed while a read was writing into them, and
// taken from the pool by other requests, would be reported as a race.
func TestReplayCopiesAreNotReusedDuringARead(t *testing.T) {
	const size = 64 << 10
	stop := make(chan struct{})
	var others sync.WaitGroup
	for range 2 { // other requests, writing into whatever copies they get
		others.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := copyPool.Get().(*[]byte)
				if cap(*p) > 0 {
					b := (*p)[:cap(*p)]
					for i := 0; i < len(b); i += 512 {
						b[i] = 'o'
					}
				}
				copyPool.Put(p)
			}
		})
	}
	for range 200 {
		inRead := make(chan struct{})
		tee := newTeeBody(io.NopCloser(readerFunc(func(p []byte) (int, error) {
			close(inRead)
			runtime.Gosched()
			for i := 0; i < len(p); i += 512 {
				p[i] = 'x'
			}
			return len(p), io.EOF
		})), 1<<20, size, nil)
		var wg sync.WaitGroup
		wg.Go(func() { tee.writeTo(io.Discard, size) })
		<-inRead
		tee.Close()
		tee.release()
		wg.Wait()
	}
	close(stop)
	others.Wait()
}

// writeTo writes the whole body whatever becomes of its copy: one that
// fits from the start, one that grows as the body comes (a length not
// known ahead), and one given up over max or over the budget, for which
// the rest goes through a pooled buffer.
func TestTeeBodyWritesTheWholeBodyWhateverBecomesOfItsCopy(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 5000) // 80,000 bytes
	for _, tt := range []struct {
		name   string
		size   int64 // the declared length; -1: unknown
		max    int64
		budget int64
		skip   string // why the copy was given up; "": it was kept
	}{
		{"fits", int64(len(body)), 1 << 20, 1 << 20, ""},
		{"grows", -1, 1 << 20, 1 << 20, ""},
		{"over max", -1, 20000, 1 << 20, skipMaxBody},
		{"over the budget", -1, 1 << 20, 40000, skipMemoryBudget},
	} {
		budget := NewReplayBudget(tt.budget)
		tee := newTeeBody(io.NopCloser(strings.NewReader(body)), tt.max, tt.size, budget)
		var upstream strings.Builder
		n, err := tee.writeTo(&upstream, int64(len(body)))
		if err != nil || n != int64(len(body)) || upstream.String() != body {
			t.Errorf("%s: wrote %d bytes (%v), the upstream got %d; want the whole body, %d", tt.name, n, err, upstream.Len(), len(body))
		}
		tee.Close()
		kept, ok, err := tee.complete(t.Context())
		switch {
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tee.skipReason() != tt.skip:
			t.Errorf("%s: copy given up for %q, want %q", tt.name, tee.skipReason(), tt.skip)
		case tt.skip == "" && (!ok || string(kept) != body):
			t.Errorf("%s: the copy holds %d bytes (ok %v), want the body", tt.name, len(kept), ok)
		}
		tee.release()
		if got := budget.InUse(); got != 0 {
			t.Errorf("%s: %d bytes of the budget still taken", tt.name, got)
		}
		if _, err := tee.Read(make([]byte, 10)); err != errReadAfterClose {
			t.Errorf("%s: a Read after Close: %v, want errReadAfterClose", tt.name, err)
		}
	}
}
