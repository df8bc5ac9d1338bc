package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeUpstreamBody answers each Read with the next chunk sent on chunks,
// waiting for it as a connection waits for the upstream; a Close makes a
// waiting Read fail, as net/http's bodies do.
type fakeUpstreamBody struct {
	chunks chan string // closed: EOF
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	readAt   time.Time     // when the last Read began
	closedAt time.Duration // how long after readAt it was closed; -1: open
}

func newFakeUpstreamBody() *fakeUpstreamBody {
	return &fakeUpstreamBody{chunks: make(chan string), closed: make(chan struct{}), closedAt: -1}
}

func (b *fakeUpstreamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.readAt = time.Now()
	b.mu.Unlock()
	select {
	case c, ok := <-b.chunks:
		if !ok {
			return 0, io.EOF
		}
		return copy(p, c), nil
	case <-b.closed:
		return 0, errors.New("read on closed response body")
	}
}

func (b *fakeUpstreamBody) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closedAt = time.Since(b.readAt)
		b.mu.Unlock()
		close(b.closed)
	})
	return nil
}

// watchedBody wraps src as the transport does, and returns the info the
// wrapper reports to.
func watchedBody(src io.ReadCloser, idle time.Duration) (*upstreamBody, *requestInfo) {
	st := newRequestState(context.Background(), time.Now())
	st.body.init(st, src, -1, idle, &idleTimers{})
	return &st.body, &st.info
}

// An upstream that sends nothing for the idle timeout has its answer cut
// off, and the access log says why.
func TestStalledUpstreamBodyIsCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUpstreamBody()
		b, info := watchedBody(src, time.Second)
		go func() { src.chunks <- "the first bytes" }()
		p := make([]byte, 64)
		if n, err := b.Read(p); err != nil || n == 0 {
			t.Fatalf("first read: %d, %v", n, err)
		}
		start := time.Now()
		_, err := b.Read(p) // the upstream stalls
		if err == nil || !strings.Contains(err.Error(), "upstream sent nothing for 1s") {
			t.Errorf("stalled read: %v", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("cut off after %s, want 1s", waited)
		}
		if info.fail != failUpstreamIdle {
			t.Errorf("info.fail %v, want the idle timeout", info.fail)
		}
		b.Close()
	})
}

// Only time spent waiting on the upstream counts: a client that takes
// its time between Reads, and an upstream that trickles within the
// timeout, are not cut off.
func TestIdleTimeoutCountsOnlyWaitsOnTheUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUpstreamBody()
		b, info := watchedBody(src, time.Second)
		go func() {
			for i := range 10 {
				if i%2 == 1 {
					time.Sleep(900 * time.Millisecond) // the upstream trickles
				}
				src.chunks <- "chunk"
			}
			close(src.chunks)
		}()
		p := make([]byte, 64)
		for {
			_, err := b.Read(p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read: %v (after %s)", err, time.Since(time.Time{}))
			}
			time.Sleep(5 * time.Second) // the client is slow
		}
		if info.fail != failNone {
			t.Errorf("info.fail %v, want none", info.fail)
		}
		b.Close()
		// The timer lent to the body is idle again, and does not close
		// the next body it watches early.
		src2 := newFakeUpstreamBody()
		b2, _ := watchedBody(src2, time.Second)
		b2.timers = b.timers
		go func() {
			time.Sleep(999 * time.Millisecond)
			src2.chunks <- "late but in time"
			close(src2.chunks)
		}()
		if _, err := io.ReadAll(b2); err != nil {
			t.Errorf("the next body: %v", err)
		}
		b2.Close()
	})
}

// A body closed for idling while no Read was waiting (the timer fired
// just as a Read returned) fails its next Read as cut off, not as a
// truncation.
func TestIdleCutOffBetweenReadsIsReportedAsIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUpstreamBody()
		b, info := watchedBody(src, time.Second)
		timer := b.timers.get()
		b.timer = timer
		timer.start(src, time.Second)
		time.Sleep(time.Second) // fires: src is closed
		synctest.Wait()
		_, err := b.Read(make([]byte, 8))
		if err == nil || !strings.Contains(err.Error(), "upstream sent nothing") || info.fail != failUpstreamIdle {
			t.Errorf("read: %v, info.fail %v", err, info.fail)
		}
		b.Close()
	})
}

// A timer that goes off just as its Read returns (the upstream answered
// at the last moment) may still close the body, whose next Read then says
// it was cut off; but it must never close the body during a later Read,
// which has not waited: a body is closed only by a Read that has waited
// the whole timeout.
func TestIdleTimerFiringAsItsReadReturnsSparesTheNextRead(t *testing.T) {
	for range 50 {
		synctest.Test(t, func(t *testing.T) {
			src := newFakeUpstreamBody()
			b, _ := watchedBody(src, time.Second)
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				time.Sleep(time.Second) // at the very moment the timer goes off
				for _, c := range []string{"just in time", "in time"} {
					select {
					case src.chunks <- c:
					case <-src.closed:
						return
					}
					time.Sleep(500 * time.Millisecond)
				}
				close(src.chunks)
			}()
			p := make([]byte, 64)
			for {
				if _, err := b.Read(p); err != nil {
					break
				}
			}
			src.mu.Lock()
			closedAt := src.closedAt
			src.mu.Unlock()
			if closedAt >= 0 && closedAt < time.Second {
				t.Errorf("the body was closed %s into a Read", closedAt)
			}
			b.Close()
			<-sent
		})
	}
}

// On a replay status the transport reads the rejection's body before it
// decides on the replay: an upstream that stalls there is cut off by the
// idle timeout as in any body, and the client, which has had nothing of
// the answer yet, gets 504 rather than waiting for ever (issue 21 item 6).
func TestStalledRejectionBodyIsCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var bodies []*fakeUpstreamBody
		api := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			b := newFakeUpstreamBody() // sends nothing
			bodies = append(bodies, b)
			return &http.Response{StatusCode: 401, Header: http.Header{"Content-Length": {"100"}}, ContentLength: 100,
				Body: b, Request: r}, nil
		})
		var events []RequestEvent
		h, err := New([]Upstream{{Name: "api", Target: mustURL(t, "http://api.example"), Tokens: &fakeTokens{}, Transport: api,
			ReplayOn: []int{401}, IdleTimeout: time.Second}},
			Options{OnRequest: func(ev RequestEvent) { events = append(events, ev) }})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("answered after %s, want the idle timeout, 1s", waited)
		}
		if w.Code != http.StatusGatewayTimeout || !strings.Contains(w.Body.String(), `"error":"upstream_idle_timeout"`) {
			t.Errorf("got %d %s, want 504 upstream_idle_timeout", w.Code, w.Body)
		}
		if len(bodies) != 1 {
			t.Errorf("%d requests sent upstream, want 1: a stalled answer is not replayed", len(bodies))
		}
		if len(events) != 1 || events[0].Error != "upstream_idle_timeout" || events[0].Fault != FaultUpstream || events[0].Status != 504 {
			t.Errorf("events %+v", events)
		}
	})
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// A stop that comes after its Read's timer went off waits, blocked, for
// the firing to finish closing the body (else the firing could land in
// the next Read), and then says the body was closed for idling.
// synctest.Wait returns only once every goroutine is blocked: a stop that
// spun meanwhile would hold it up for ever.
func TestIdleTimerStopWaitsBlockedForALateFiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timers := &idleTimers{}
		timer := timers.get()
		closing, release := make(chan struct{}), make(chan struct{})
		timer.start(closerFunc(func() error {
			close(closing)
			<-release
			return nil
		}), time.Second)
		<-closing // the timer went off; its firing is in the body's Close
		stopped := make(chan bool, 1)
		go func() { stopped <- timer.stop() }()
		synctest.Wait()
		select {
		case <-stopped:
			t.Fatal("stop returned while the firing was still closing the body")
		default:
		}
		close(release)
		if fired := <-stopped; !fired {
			t.Error("stop after a firing says the body was not closed for idling")
		}
		timers.put(timer)
	})
}
