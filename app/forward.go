package app

import (
	"context"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/authproxy/authproxy/admin"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/pki"
	"github.com/authproxy/authproxy/proxy"
	"github.com/sirupsen/logrus"
)

// forwardSettings copies the forward proxy's config into proxy's terms:
// the CA, loaded once per config, mints the tunnels' certificates. Off,
// it is the zero Forward, and the forward proxy's listener not there.
func forwardSettings(cfg *config.Config, p *program) (proxy.Forward, error) {
	f := cfg.ForwardProxy
	if f.Listen == "" {
		return proxy.Forward{}, nil
	}
	ca, err := pki.LoadCA(f.CACertFile, f.CAKeyFile)
	if err != nil {
		return proxy.Forward{}, err
	}
	minter, err := pki.NewMinter(ca, p.now, 0)
	if err != nil {
		return proxy.Forward{}, err
	}
	return proxy.Forward{Certificates: minter, PassThrough: f.PassThrough}, nil
}

// forwardServer listens for the forward proxy, if it is on: its server,
// listener and the ForwardServer behind them, which the caller shuts
// down after the server. Every request it takes is answered by the
// current config's handler, as the proxy's own listener's are.
func (p *program) forwardServer(cfg *config.Config, serverLog *log.Logger) (*http.Server, net.Listener, *proxy.ForwardServer, error) {
	f := cfg.ForwardProxy
	if f.Listen == "" {
		return nil, nil, nil, nil
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return nil, nil, nil, err
	}
	fw := proxy.NewForwardServer(func() *proxy.Handler { return p.state.Load().handler }, proxy.ForwardLimits{
		MaxTunnels:        f.MaxTunnels,
		HandshakeTimeout:  cfg.Limits.ReadHeaderTimeout,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
		Wrap:              p.metrics.InFlight,
		Log:               p.log.WithField("listener", "forward_proxy"),
	})
	srv := &http.Server{
		Handler:           p.metrics.InFlight(fw),
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
		ErrorLog:          serverLog,
		// The forward proxy speaks HTTP/1.1 to its clients, as HTTP_PROXY
		// clients do; HTTP/2 is inside the tunnels.
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	return srv, ln, fw, nil
}

// shutdownForward drains the forward proxy: its listener first, then
// the requests inside its tunnels.
func shutdownForward(ctx context.Context, srv *http.Server, fw *proxy.ForwardServer, logger logrus.FieldLogger) {
	if srv == nil {
		return
	}
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
	if err := fw.Shutdown(ctx); err != nil {
		logger.WithError(err).Warn("forward proxy: drain cut short")
		fw.Close()
	}
}

// requestCounts counts each upstream's requests by the way they came in,
// for /status; they live as long as the process, across reloads.
type requestCounts struct{ m sync.Map } // upstream name -> *modeCounts

type modeCounts struct {
	reverse, forward atomic.Uint64
	lastHost         atomic.Pointer[string]
}

func (c *requestCounts) of(upstream string) *modeCounts {
	v, _ := c.m.LoadOrStore(upstream, &modeCounts{})
	return v.(*modeCounts)
}

// record counts ev, a request some upstream took.
func (c *requestCounts) record(ev proxy.RequestEvent) {
	if ev.Upstream == "" {
		return
	}
	mc := c.of(ev.Upstream)
	if ev.Mode == proxy.ModeForward {
		mc.forward.Add(1)
		if p := mc.lastHost.Load(); p == nil || *p != ev.Host {
			h := ev.Host
			mc.lastHost.Store(&h)
		}
		return
	}
	mc.reverse.Add(1)
}

func (c *requestCounts) requests(upstream string) func() admin.Requests {
	return func() admin.Requests {
		mc := c.of(upstream)
		r := admin.Requests{Reverse: mc.reverse.Load(), Forward: mc.forward.Load()}
		if p := mc.lastHost.Load(); p != nil {
			r.LastForwardHost = *p
		}
		return r
	}
}
