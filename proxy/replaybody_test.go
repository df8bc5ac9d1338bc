package proxy

import (
	"io"
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
