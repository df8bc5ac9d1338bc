package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// A request body is written to a plain upstream connection through the
// pooled buffers: without WithPooledCopy, the connection's ReadFrom
// allocated 32 KiB for each body (issue 16).
func TestRequestBodiesAreWrittenThroughPooledBuffers(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations over many requests, without the race detector")
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer api.Close()
	body := bytes.Repeat([]byte("b"), 64<<10)
	perRequest := func(pooled bool) uint64 {
		tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext}
		if pooled {
			tr.DialContext = WithPooledCopy(tr.DialContext)
		}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		post := func() {
			resp, err := client.Post(api.URL, "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		post() // dials
		const n = 200
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			post()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / n
	}
	plain, pooled := perRequest(false), perRequest(true)
	t.Logf("bytes allocated a request (client, transport and server): %d, with WithPooledCopy %d", plain, pooled)
	if plain < pooled+24<<10 {
		t.Errorf("WithPooledCopy saves %d bytes a request, want the 32 KiB copy buffer", int64(plain)-int64(pooled))
	}
}

// The wrapped connection still half-closes, which ReverseProxy does to
// the upstream's side of an upgraded connection when the client's ends.
func TestPooledCopyConnHalfCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = io.ReadAll(c) // ends at the half-close
			c.Write([]byte("still open"))
			c.Close()
		}
		got <- err
	}()
	c, err := WithPooledCopy((&net.Dialer{}).DialContext)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); string(b) != "still open" {
		t.Errorf("read %q, %v after the half-close", b, err)
	}
}
