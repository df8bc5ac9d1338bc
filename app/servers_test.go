package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// brokenListener fails every Accept, as a listener whose socket died.
type brokenListener struct{ net.Listener }

func (brokenListener) Accept() (net.Conn, error) { return nil, errors.New("accept: the socket died") }

// When one server stops at start, the other is closed too and nothing is
// left running: the process exits non-zero without a half-served port.
func TestOneServerFailingClosesTheOther(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, failing := range []int{0, 1} { // the proxy's, then the admin's
		var servers []*http.Server
		var listeners []net.Listener
		var healthy net.Listener
		for i := range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			servers = append(servers, &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second})
			if i == failing {
				ln.Close()
				listeners = append(listeners, brokenListener{ln})
			} else {
				healthy = ln
				listeners = append(listeners, ln)
			}
		}
		_, err := runServers(context.Background(), servers, listeners)
		if err == nil || err.Error() != "accept: the socket died" {
			t.Errorf("server %d failing: got %v", failing, err)
		}
		if conn, err := net.Dial("tcp", healthy.Addr().String()); err == nil {
			conn.Close()
			t.Errorf("server %d failing: the other still accepts connections", failing)
			for _, s := range servers {
				s.Close()
			}
		}
	}
}
