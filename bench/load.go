package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// loadGen drives one proxy over a fixed number of keep-alive connections,
// one request in flight on each. It writes pre-encoded requests and reads
// answers with http.ReadResponse instead of using an http.Client: the
// generator shares two cores with the proxy it measures, and net/http's
// client (two goroutines and several channel hand-offs per request) would
// take CPU the proxy could have used. The proxy's own figures do not
// depend on this: they are read from its process.
type loadGen struct {
	addr  string // host:port of the proxy
	req   []byte // one whole request, headers and body
	conns []clientConn
}

type clientConn struct {
	c  net.Conn
	br *bufio.Reader
}

// loadResult is what the generator saw in one run.
type loadResult struct {
	requests int64 // answered 200
	errors   int64 // another status, or a connection that failed
	elapsed  time.Duration
	latency  []time.Duration // sorted, one per answered request
}

func newLoadGen(addr string, sc scenario) *loadGen {
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: authproxy-bench\r\n", sc.method, sc.path, addr)
	if sc.body > 0 {
		head += fmt.Sprintf("Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", sc.body)
	}
	req := append([]byte(head+"\r\n"), make([]byte, sc.body)...)
	for i := len(head) + 2; i < len(req); i++ {
		req[i] = 'b'
	}
	return &loadGen{addr: addr, req: req, conns: make([]clientConn, sc.conns)}
}

// run keeps every connection busy for d, then waits for the requests in
// flight. Connections stay open between runs, so a warm-up run leaves
// them established for the measured one.
func (g *loadGen) run(d time.Duration) loadResult {
	return drive(g.conns, d, func(cc *clientConn) error { return cc.roundTrip(g.addr, g.req) })
}

// drive sends requests with send on every connection, one at a time each,
// for d, then waits for those in flight; a request's latency is its send.
func drive(conns []clientConn, d time.Duration, send func(*clientConn) error) loadResult {
	start := time.Now()
	deadline := start.Add(d)
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func(cc *clientConn) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			var errs int64
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := send(cc); err != nil {
					errs++
					// A refused or reset connection must not spin.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latency = append(res.latency, lat...)
			res.errors += errs
			mu.Unlock()
		}(&conns[i])
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests = int64(len(res.latency))
	slices.Sort(res.latency)
	return res
}

func (g *loadGen) close() {
	for i := range g.conns {
		g.conns[i].close()
	}
}

// roundTrip sends one request and reads the whole answer. Anything but a
// 200 is an error; the connection is dropped when the answer or an error
// says so.
func (cc *clientConn) roundTrip(addr string, req []byte) error {
	if cc.c == nil {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		cc.c, cc.br = c, bufio.NewReaderSize(c, 32<<10)
	}
	// A proxy that stops answering must end the run, not hang it.
	cc.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := cc.c.Write(req); err != nil {
		cc.close()
		return err
	}
	resp, err := http.ReadResponse(cc.br, nil)
	if err != nil {
		cc.close()
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		cc.close()
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (cc *clientConn) close() {
	if cc.c != nil {
		cc.c.Close()
		cc.c, cc.br = nil, nil
	}
}

// percentile of a sorted slice; 0 when it is empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)*p/100, len(sorted)-1)]
}
