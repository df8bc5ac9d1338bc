package integration

// Promises about clients that upload slowly and then stall: the memory
// they can make the proxy hold is bounded, and they are cut off.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// procStatus reads a size field ("VmRSS", "VmHWM") of a process, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// TestBinaryStalledUploadsAreBoundedAndCutOff has many clients each upload
// most of a body the size of max_body, slowly, and then stall, against
// the built binary. The proxy's peak RSS must stay within what the replay
// budget allows plus a per-connection allowance, and every stalled
// client must get 408 once it has sent nothing for body_read_timeout,
// after which the copies' memory is all given back.
func TestBinaryStalledUploadsAreBoundedAndCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads hundreds of MiB through the binary")
	}
	bin := buildBinary(t)
	for _, tt := range []struct {
		clients int
		size    int64
	}{
		{300, 1 << 20},
		{100, 4 << 20},
	} {
		t.Run(fmt.Sprintf("%dx%dMiB", tt.clients, tt.size>>20), func(t *testing.T) {
			stalledUploads(t, bin, tt.clients, tt.size)
		})
	}
}

func stalledUploads(t *testing.T, bin string, clients int, size int64) {
	const (
		budget      = 16 << 20
		bodyTimeout = time.Second
		pieces      = 32
		pause       = 50 * time.Millisecond // pieces*pause is longer than bodyTimeout: only a stall trips it
		perConn     = 256 << 10             // buffers and goroutine stacks of a proxied request, with room
	)
	f := fakeapi.RedGIFs()
	api := fakeapi.New(f, clientID, clientSecret, nil)
	apiURL := newServer(t, api)
	var received atomic.Int64
	upstream := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(n)
	}))
	config := configFor(t, f, upstream, setup{tokenURL: apiURL + f.TokenPath,
		topYAML:      fmt.Sprintf("limits: {replay_memory: %d, body_read_timeout: %s}\n", budget, bodyTimeout),
		upstreamYAML: fmt.Sprintf("    replay: {max_body: %d}\n", size)})
	p := runBinary(t, bin, config)
	if resp, err := http.Post("http://"+p.addr+"/redgifs/warm-up", "text/plain", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	before := procStatus(t, p.pid, "VmRSS")

	sent := size - 1024 // most of the body, and then nothing
	payload := make([]byte, sent/pieces)
	var wg sync.WaitGroup
	statuses := make(chan int, clients)
	for range clients {
		wg.Go(func() {
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			fmt.Fprintf(conn, "POST /redgifs/upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
			for range pieces {
				if _, err := conn.Write(payload); err != nil {
					break // cut off already: read the answer
				}
				time.Sleep(pause)
			}
			status := 0
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	peak := procStatus(t, p.pid, "VmHWM")
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	growth := peak - before
	// The garbage collector may let the heap reach twice the live copies.
	bound := int64(2*budget + clients*perConn)
	t.Logf("%d clients x %d MiB stalled: RSS %d MiB before, peak %d MiB (+%d MiB; bound +%d MiB); upstream received %d MiB; answers %v",
		clients, size>>20, before>>20, peak>>20, growth>>20, bound>>20, received.Load()>>20, counts)
	if growth > bound {
		t.Errorf("peak RSS grew by %d MiB, over the %d MiB the replay budget and %d connections allow", growth>>20, bound>>20, clients)
	}
	if counts[408] != clients {
		t.Errorf("answers %v, want %d x 408", counts, clients)
	}
	e := &env{t: t, api: api, admin: "http://" + p.admin}
	_, metrics := e.adminGet("/metrics")
	if !strings.Contains(metrics, "\nauthproxy_replay_memory_bytes 0\n") {
		t.Errorf("replay memory still held after every client was cut off:\n%s", grepLines(metrics, "authproxy_replay"))
	}
	skipped := 0
	if m := regexp.MustCompile(`authproxy_replay_skipped_total\{reason="memory_budget",upstream="redgifs"\} (\d+)`).FindStringSubmatch(metrics); m != nil {
		skipped, _ = strconv.Atoi(m[1])
	}
	if skipped < clients-budget/int(size) {
		t.Errorf("skipped replays: %s", grepLines(metrics, "authproxy_replay_skipped"))
	}
	if logs := p.logs.String(); !strings.Contains(logs, `"error":"request_body_timeout"`) {
		t.Error("the access log does not say the bodies timed out")
	}
}

// The body read timeout bounds the client's upload only: once the body
// is in, the upstream may take longer than it to answer.
func TestBodyReadTimeoutDoesNotCutOffASlowAnswer(t *testing.T) {
	const bodyTimeout = 200 * time.Millisecond
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{topYAML: fmt.Sprintf("limits: {body_read_timeout: %s}\n", bodyTimeout)})
	arrived, release := holdAPI(t, e.api, func(w http.ResponseWriter) bool {
		io.WriteString(w, "answered")
		return true
	})
	result := make(chan string, 1)
	go func() {
		resp, err := e.client.Post(e.url+f.APIPath, "application/json", strings.NewReader(`{"q":"x"}`))
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-arrived // the whole body has been read
	// Real time must pass here: what is tested is a deadline on the
	// connection, which no fake clock moves.
	time.Sleep(5 * bodyTimeout)
	release()
	if got := <-result; got != "200 answered" {
		t.Errorf("got %q, want the upstream's late answer", got)
	}
}
