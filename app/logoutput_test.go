package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authproxy/authproxy/proxy"
	"github.com/sirupsen/logrus"
)

// fileLike is a writer that logOutput treats as a file (it holds access
// lines back for it), recording each write.
type fileLike struct {
	mu     sync.Mutex
	writes []string
}

func (f *fileLike) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, string(p))
	return len(p), nil
}

func (f *fileLike) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.writes, "")
}

func heldOutput(w io.Writer) *logOutput { return &logOutput{w: w, hold: true} }

// Access lines of requests that did not fail are held back and written
// together; any other line (an error access line, anything from logrus)
// goes out at once, after them, in order; closing writes what is held.
func TestLogOutputHoldsAccessLinesUntilAnotherLine(t *testing.T) {
	for _, other := range []struct {
		name, marker string // marker: what the other line says; "" for none
		write        func(*logOutput)
	}{
		{"an access line reporting an error", `"path":"/failed"`, func(o *logOutput) {
			a := &accessLog{logger: logrus.New(), out: o}
			a.LogAccess(proxy.AccessLine{Method: "GET", Path: "/failed", Status: 502, ExpectedBytes: -1, Error: "upstream_unreachable"})
		}},
		{"a line from logrus", "msg=warned", func(o *logOutput) {
			l := logrus.New()
			l.Out = o
			l.Warn("warned")
		}},
		{"shutdown", "", func(o *logOutput) { o.Close() }},
	} {
		f := &fileLike{}
		o := heldOutput(f)
		a := &accessLog{logger: logrus.New(), out: o}
		for _, p := range []string{"/1", "/2"} {
			a.LogAccess(proxy.AccessLine{Method: "GET", Path: p, Status: 200, ExpectedBytes: -1})
		}
		if got := f.text(); got != "" {
			t.Fatalf("%s: written before another line: %q", other.name, got)
		}
		other.write(o)
		got := f.text()
		if i1, i2 := strings.Index(got, `"path":"/1"`), strings.Index(got, `"path":"/2"`); i1 < 0 || i2 < i1 {
			t.Errorf("%s: the held lines are not written, in order: %q", other.name, got)
		}
		if i := strings.Index(got, other.marker); other.marker != "" && i < strings.Index(got, `"path":"/2"`) {
			t.Errorf("%s: not written after the held lines: %q", other.name, got)
		}
		if other.marker == "" {
			a.LogAccess(proxy.AccessLine{Method: "GET", Path: "/after", Status: 200, ExpectedBytes: -1})
			if !strings.Contains(f.text(), `"path":"/after"`) {
				t.Error("a line after shutdown is held")
			}
		}
		o.Close()
	}
}

// Held lines are written logHoldFor after the first of them, and when
// they would fill the buffer.
func TestLogOutputWritesHeldLinesSoon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fileLike{}
		o := heldOutput(f)
		defer o.Close()
		o.writeHeld([]byte("first\n"))
		time.Sleep(logHoldFor / 2)
		o.writeHeld([]byte("second\n"))
		time.Sleep(logHoldFor/2 - time.Nanosecond)
		synctest.Wait()
		if got := f.text(); got != "" {
			t.Fatalf("written before logHoldFor: %q", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := f.text(); got != "first\nsecond\n" {
			t.Fatalf("after logHoldFor: %q", got)
		}
		line := bytes.Repeat([]byte("x"), 1000)
		for range logHoldBytes/len(line) + 1 {
			o.writeHeld(line)
		}
		if n := len(f.writes); n != 2 {
			t.Errorf("%d writes once the buffer is full, want 2", n)
		}
	})
}

// Nothing is held for a writer that is not a file: a test's or an
// embedding program's buffer sees each line at once.
func TestLogOutputHoldsNothingForAWriterInMemory(t *testing.T) {
	var buf bytes.Buffer
	o := newLogOutput(&buf)
	o.writeHeld([]byte("line\n"))
	if buf.String() != "line\n" {
		t.Errorf("held for a bytes.Buffer: %q", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !newLogOutput(f).hold {
		t.Error("nothing held for a file")
	}
}

// At shutdown the access lines still held are written: the last
// requests before a SIGTERM are in the log (by the shutdown's own log
// line, which writes what is held before it, or by closing the output
// after the drain).
func TestShutdownWritesHeldAccessLines(t *testing.T) {
	defer func(d time.Duration) { logHoldFor = d }(logHoldFor)
	logHoldFor = time.Hour // nothing but the shutdown writes them
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
	}))
	defer idp.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer api.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
log: {level: info, format: json}
store: {type: memory}
upstreams:
  api:
    target: %s
    path_prefix: ""
    token: {url: "%s/token", client_id: id, client_secret: secret}
`, api.URL, idp.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	exited := make(chan int, 1)
	go func() {
		exited <- Run(ctx, Options{Args: []string{"--config", path}, Stdout: io.Discard, Stderr: logFile,
			Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-exited:
		t.Fatalf("exited with %d", code)
	}
	resp, err := http.Get("http://" + addr + "/last-before-shutdown")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("exit code %d", code)
	}
	logs, _ := os.ReadFile(logFile.Name())
	if !strings.Contains(string(logs), `"path":"/last-before-shutdown"`) {
		t.Errorf("the access line is not in the log after shutdown:\n%s", logs)
	}
}
