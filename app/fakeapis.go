package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/authproxy/authproxy/integration/fakeapi"
)

// fakeapis serves the fake APIs the tests use, each on its own port from
// basePort on (0: any free ports), until ctx is done. docker-compose runs
// it as the APIs behind the proxy, so `docker compose up` needs no
// credentials. The client is demo-client / demo-secret.
func fakeapis(ctx context.Context, host string, basePort int, opts Options) int {
	flavors := append(fakeapi.All(), fakeapi.Redbooth())
	var servers []*http.Server
	for i, f := range flavors {
		port := 0
		if basePort != 0 {
			port = basePort + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			fmt.Fprintf(opts.Stderr, "authproxy fakeapis: %v\n", err)
			for _, s := range servers {
				s.Close()
			}
			return 1
		}
		api := fakeapi.New(f, "demo-client", demoSecret, nil)
		srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go srv.Serve(ln)
		fmt.Fprintf(opts.Stdout, "%s http://%s token=%s api=%s\n", f.Name, ln.Addr(), f.TokenPath, f.APIPath)
	}
	<-ctx.Done()
	for _, s := range servers {
		s.Close()
	}
	return 0
}
