package proxy

import (
	"context"
	"errors"
	"io"
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
}

func newFakeUpstreamBody() *fakeUpstreamBody {
	return &fakeUpstreamBody{chunks: make(chan string), closed: make(chan struct{})}
}

func (b *fakeUpstreamBody) Read(p []byte) (int, error) {
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
	b.once.Do(func() { close(b.closed) })
	return nil
}

func watchedBody(src io.ReadCloser, idle time.Duration, info *requestInfo) *upstreamBody {
	b := &upstreamBody{}
	b.init(context.Background(), src, -1, idle, &idleTimers{}, info)
	return b
}

// An upstream that sends nothing for the idle timeout has its answer cut
// off, and the access log says why.
func TestStalledUpstreamBodyIsCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeUpstreamBody()
		info := &requestInfo{}
		b := watchedBody(src, time.Second, info)
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
		info := &requestInfo{}
		b := watchedBody(src, time.Second, info)
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
		b2 := &upstreamBody{}
		b2.init(context.Background(), src2, -1, time.Second, b.timers, info)
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
		info := &requestInfo{}
		b := watchedBody(src, time.Second, info)
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
