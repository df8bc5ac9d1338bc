package proxy

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The transport may close a request body from two goroutines (its write
// loop and the caller's error path): the second Close must be harmless.
func TestCopyingBodyClosedTwiceConcurrently(t *testing.T) {
	for range 100 {
		out := newCopyingBody(io.NopCloser(strings.NewReader("body")), 1<<10, 4, nil)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { out.Close() })
		}
		wg.Wait()
		out.release() // the response's hold
		if got := out.kept.refs; got != 0 {
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
	out := newCopyingBody(io.NopCloser(readerFunc(func(p []byte) (int, error) {
		if len(p) > 0 && read < len(copyArea) && &p[0] == &copyArea[read] {
			inPlace += min(len(p), src.Len())
		}
		n, err := src.Read(p)
		read += n
		return n, err
	})), 1<<20, size, nil)
	copyArea = out.kept.buf[:cap(out.kept.buf)]

	tr := &http.Transport{DialContext: WithPooledCopy((&net.Dialer{}).DialContext)}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest("POST", api.URL, out)
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
	kept, ok, err := out.complete(t.Context())
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
	out := newCopyingBody(io.NopCloser(readerFunc(func(p []byte) (int, error) {
		close(inRead)
		<-finish
		return copy(p, strings.Repeat("x", len(p))), io.EOF
	})), 1<<20, size, budget)
	taken := budget.InUse()
	wrote := make(chan error, 1)
	go func() {
		_, err := out.writeTo(io.Discard, size)
		wrote <- err
	}()
	<-inRead
	out.Close()   // the transport, from its error path
	out.release() // the response's hold: the last
	if got := budget.InUse(); got != taken {
		t.Errorf("during the read, the budget holds %d bytes for the copy, want %d: the copy was freed", got, taken)
	}
	select {
	case <-out.done:
		t.Error("done was closed during the read: a replay could take the copy while it is written")
	default:
	}
	close(finish)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	<-out.done
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
		out := newCopyingBody(io.NopCloser(readerFunc(func(p []byte) (int, error) {
			close(inRead)
			runtime.Gosched()
			for i := 0; i < len(p); i += 512 {
				p[i] = 'x'
			}
			return len(p), io.EOF
		})), 1<<20, size, nil)
		var wg sync.WaitGroup
		wg.Go(func() { out.writeTo(io.Discard, size) })
		<-inRead
		out.Close()
		out.release()
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
		out := newCopyingBody(io.NopCloser(strings.NewReader(body)), tt.max, tt.size, budget)
		var upstream strings.Builder
		n, err := out.writeTo(&upstream, int64(len(body)))
		if err != nil || n != int64(len(body)) || upstream.String() != body {
			t.Errorf("%s: wrote %d bytes (%v), the upstream got %d; want the whole body, %d", tt.name, n, err, upstream.Len(), len(body))
		}
		out.Close()
		kept, ok, err := out.complete(t.Context())
		switch {
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case out.skipReason() != tt.skip:
			t.Errorf("%s: copy given up for %q, want %q", tt.name, out.skipReason(), tt.skip)
		case tt.skip == "" && (!ok || string(kept) != body):
			t.Errorf("%s: the copy holds %d bytes (ok %v), want the body", tt.name, len(kept), ok)
		}
		out.release()
		if got := budget.InUse(); got != 0 {
			t.Errorf("%s: %d bytes of the budget still taken", tt.name, got)
		}
		if _, err := out.Read(make([]byte, 10)); err != errReadAfterClose {
			t.Errorf("%s: a Read after Close: %v, want errReadAfterClose", tt.name, err)
		}
	}
}

// Under load, with copies going back to the pool and out of it again,
// every body reaches the upstream whole and in order, on the first
// attempt and on the replay, whatever the upstream does with the first
// (reject it before reading, after part of it, after all of it), for
// bodies sized and chunked, around the transport's buffer and the
// copy's sizes, and over max.
func TestReplayBodiesUnderLoadAreTheClientsBytes(t *testing.T) {
	const max = 128 << 10
	type seen struct {
		first, replay []byte
		attempts      int
	}
	var mu sync.Mutex
	got := map[string]*seen{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Id")
		mode := r.Header.Get("X-Mode")
		mu.Lock()
		s := got[id]
		if s == nil {
			s = &seen{}
			got[id] = s
		}
		s.attempts++
		attempt := s.attempts
		mu.Unlock()
		if attempt == 1 {
			var b []byte
			switch mode {
			case "none":
			case "part":
				b = make([]byte, 3000)
				n, _ := io.ReadFull(r.Body, b)
				b = b[:n]
			default:
				b, _ = io.ReadAll(r.Body)
			}
			mu.Lock()
			s.first = b
			mu.Unlock()
			if mode != "ok" {
				w.WriteHeader(401)
				return
			}
			w.Write(b)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		s.replay = b
		mu.Unlock()
		w.Write(b)
	}))
	defer api.Close()
	budget := NewReplayBudget(1 << 20)
	p := startProxyWith(t, Options{ReplayBudget: budget}, Upstream{Name: "api", Target: mustURL(t, api.URL),
		Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: max})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	sizes := []int{1, 100, 3000, 4000, 4096, 4200, 8192, 32 << 10, 64<<10 - 1, 64 << 10, 64<<10 + 1, 100000, max - 1, max, max + 1, 300 << 10}
	modes := []string{"none", "part", "all", "ok"}
	var wg sync.WaitGroup
	var failed sync.Once
	for g := range 6 {
		wg.Go(func() {
			for i := range 60 {
				id := fmt.Sprint(g, "-", i)
				size := sizes[(g*7+i)%len(sizes)]
				mode := modes[(g+i/len(sizes))%len(modes)]
				chunked := (g+i)%3 == 0
				body := make([]byte, size)
				rand.Read(body)
				var rd io.Reader = bytes.NewReader(body)
				if chunked {
					rd = io.MultiReader(rd)
				}
				if (g+i)%5 == 0 { // a client sending in small pieces
					pr, pw := io.Pipe()
					go func() {
						for b := body; len(b) > 0; {
							n := min(len(b), 1000+i*37)
							pw.Write(b[:n])
							b = b[n:]
						}
						pw.Close()
					}()
					rd = pr
				}
				req, _ := http.NewRequest("POST", p.URL+"/x/"+id, rd)
				if !chunked {
					req.ContentLength = int64(size)
				}
				req.Header.Set("X-Id", id)
				req.Header.Set("X-Mode", mode)
				resp, err := client.Do(req)
				if err != nil {
					failed.Do(func() { t.Errorf("%s: %v", id, err) })
					continue
				}
				echo, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				over := size > max
				mu.Lock()
				s := got[id]
				mu.Unlock()
				switch {
				case mode == "ok" || (!over && mode != "ok"):
					if resp.StatusCode != 200 || !bytes.Equal(echo, body) {
						failed.Do(func() {
							t.Errorf("%s (size %d, %s, chunked %v): status %d, echoed %d bytes, equal %v; upstream saw first %d, replay %d",
								id, size, mode, chunked, resp.StatusCode, len(echo), bytes.Equal(echo, body), len(s.first), len(s.replay))
						})
					}
				default: // over max, rejected: the 401 goes back
					if resp.StatusCode != 401 {
						failed.Do(func() { t.Errorf("%s (size %d over max): status %d", id, size, resp.StatusCode) })
					}
				}
				if s != nil && !bytes.HasPrefix(body, s.first) {
					failed.Do(func() { t.Errorf("%s (size %d, %s): the first attempt carried bytes not the client's", id, size, mode) })
				}
			}
		})
	}
	wg.Wait()
	// Every copy's share of the budget comes back once its transport and
	// its response are done with it.
	for deadline := time.Now().Add(5 * time.Second); budget.InUse() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the budget still holds %d bytes after every request ended", budget.InUse())
		}
	}
}

// A client that sends fewer bytes than its Content-Length, then leaves:
// whatever the upstream does, nothing hangs and the budget comes back.
func TestAShortBodyGivesItsReplayCopyBack(t *testing.T) {
	for _, mode := range []string{"none", "all"} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if mode == "all" {
				io.ReadAll(r.Body)
			}
			w.WriteHeader(401)
		}))
		budget := NewReplayBudget(1 << 20)
		p := startProxyWith(t, Options{ReplayBudget: budget}, Upstream{Name: "api", Target: mustURL(t, api.URL),
			Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20})
		for _, sent := range []int{0, 1000, 5000, 70000} {
			c, err := net.Dial("tcp", p.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
			c.Write(bytes.Repeat([]byte("a"), sent))
			time.Sleep(20 * time.Millisecond)
			c.Close()
		}
		for deadline := time.Now().Add(5 * time.Second); budget.InUse() != 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the budget still holds %d bytes", mode, budget.InUse())
			}
		}
		api.Close()
	}
}

// Over HTTP/2 (which closes a request body from a goroutine of its own,
// possibly during a Read, and may read it after), an early rejection is
// replayed with the whole body.
func TestReplayOverHTTP2SendsTheWholeBody(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			w.WriteHeader(505)
			return
		}
		if r.Header.Get("Authorization") == "Bearer t1" {
			if r.Header.Get("X-Read") == "part" {
				io.ReadFull(r.Body, make([]byte, 5000))
			}
			w.WriteHeader(401)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		w.Write(b[:min(len(b), 10)])
	}))
	api.EnableHTTP2 = true
	api.StartTLS()
	defer api.Close()
	tr := api.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = WithPooledCopy((&net.Dialer{}).DialContext)
	tr.ForceAttemptHTTP2 = true
	tokens := &fakeTokens{}
	budget := NewReplayBudget(4 << 20)
	p := startProxyWith(t, Options{ReplayBudget: budget}, Upstream{Name: "api", Target: mustURL(t, api.URL), Tokens: tokens,
		ReplayOn: []int{401}, MaxReplayBody: 1 << 20, Transport: tr})
	for i := range 40 {
		tokens.mu.Lock()
		tokens.cur, tokens.issued = nil, 0
		tokens.mu.Unlock()
		body := make([]byte, []int{100, 70000, 512 << 10}[i%3])
		rand.Read(body)
		var rd io.Reader = bytes.NewReader(body)
		if i%2 == 0 {
			rd = io.MultiReader(rd)
		}
		req := mustRequest(t, "POST", p.URL+"/x", rd)
		if i%4 < 2 {
			req.Header.Set("X-Read", "part")
		}
		resp := do(t, req)
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Fatalf("%d: status %d", i, resp.StatusCode)
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if !bytes.Equal(last, body) {
			t.Fatalf("%d: the replay carried %d of %d bytes, or others", i, len(last), len(body))
		}
	}
	for deadline := time.Now().Add(5 * time.Second); budget.InUse() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the budget still holds %d bytes", budget.InUse())
		}
	}
}

// newCopyingBody is a copying body over src, made as the transport makes
// one; nil when no copy can be had.
func newCopyingBody(src io.ReadCloser, limit, size int64, budget *ReplayBudget) *copyingBody {
	b := &copyingBody{}
	if !b.init(src, limit, size, budget) {
		return nil
	}
	return b
}
