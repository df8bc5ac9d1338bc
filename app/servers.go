package app

import (
	"context"
	"net"
	"net/http"
)

// runServers serves each server on its listener until ctx is done or one
// of them stops (an Accept that fails for good, say). When one stops it
// closes the others, waits until every Serve has returned and returns the
// failure: the process is about to exit non-zero and must not leave a port
// half served. When ctx is done it returns nil with all still serving, for
// the caller to drain; done then receives each Serve's end.
func runServers(ctx context.Context, servers []*http.Server, listeners []net.Listener) (done <-chan error, err error) {
	serveErr := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { serveErr <- srv.Serve(listeners[i]) }()
	}
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		return serveErr, nil
	}
	for _, srv := range servers {
		srv.Close()
	}
	for range len(servers) - 1 {
		<-serveErr
	}
	return serveErr, err
}
