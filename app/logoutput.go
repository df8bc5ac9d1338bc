package app

import (
	"io"
	"os"
	"sync"
	"time"
)

// What an output that is a file (stderr, a pipe) holds back of the access
// log: a write is a system call, which at one per request cost the proxy
// as much as some of its own work. Held lines go out when the buffer is
// full, logHoldFor after the first of them, with any other line (every
// line from logrus, every access line that reports an error), and when
// the output is closed at shutdown. A crash loses what is held: at most
// logHoldFor, or logHoldBytes, of access lines for requests that did not
// fail.
const logHoldBytes = 32 << 10

var logHoldFor = 100 * time.Millisecond // a variable for tests

// logOutput is the log's output: each line is written whole, by one
// Write, whether it comes from logrus (which holds its own lock only
// around its own writes) or from the access log, and in the order the
// lines were given.
type logOutput struct {
	w    io.Writer
	hold bool // access lines may be held back (w is a file)

	mu     sync.Mutex
	held   []byte      // access lines not written yet
	timer  *time.Timer // writes held out logHoldFor after its first line
	closed bool        // nothing is held any more
}

// newLogOutput writes to w, holding access lines back if w is a file:
// an in-memory writer (a test's, or an embedding program's) costs
// nothing to write to, and gets every line at once.
func newLogOutput(w io.Writer) *logOutput {
	_, file := w.(*os.File)
	return &logOutput{w: w, hold: file}
}

// Write writes p at once, after whatever is held.
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.held) > 0 && len(o.held)+len(p) <= logHoldBytes {
		o.held = append(o.held, p...) // one write for both
		return len(p), o.flushLocked()
	}
	if err := o.flushLocked(); err != nil {
		return 0, err
	}
	return o.w.Write(p)
}

// writeHeld writes the access line p, or holds it back to be written
// with others.
func (o *logOutput) writeHeld(p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.hold || o.closed || len(p) > logHoldBytes {
		o.flushLocked()
		o.w.Write(p)
		return
	}
	if len(o.held)+len(p) > logHoldBytes {
		o.flushLocked()
	}
	if len(o.held) == 0 {
		if o.timer == nil {
			o.held = make([]byte, 0, logHoldBytes)
			o.timer = time.AfterFunc(logHoldFor, o.flush)
		} else {
			o.timer.Reset(logHoldFor)
		}
	}
	o.held = append(o.held, p...)
}

// flush writes what is held.
func (o *logOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
}

func (o *logOutput) flushLocked() error {
	if len(o.held) == 0 {
		return nil
	}
	_, err := o.w.Write(o.held)
	o.held = o.held[:0]
	return err
}

// Close writes what is held, and holds nothing back from then on. The
// underlying writer stays open: it is the process's stderr.
func (o *logOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
	}
	return o.flushLocked()
}
