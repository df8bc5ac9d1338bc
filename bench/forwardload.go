package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// generator is what measure drives: loadGen, or dialGen.
type generator interface {
	run(d time.Duration) loadResult
}

// dialGen is loadGen with the connection made by dial: a plain TCP
// connection, a TLS one, or a CONNECT tunnel with TLS inside. With fresh,
// every request has a connection of its own, made and closed within the
// request's time: the forward proxy's new tunnels per second.
type dialGen struct {
	dial  func() (net.Conn, error)
	req   []byte
	fresh bool
	conns []clientConn
}

func newDialGen(dial func() (net.Conn, error), host string, sc scenario, fresh bool) *dialGen {
	req := fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: authproxy-bench\r\n\r\n", sc.method, sc.path, host)
	return &dialGen{dial: dial, req: req, fresh: fresh, conns: make([]clientConn, sc.conns)}
}

// run is loadGen.run's, with the dial (and for fresh, the close) inside
// each request's time.
func (g *dialGen) run(d time.Duration) loadResult {
	return drive(g.conns, d, func(cc *clientConn) error {
		err := g.roundTrip(cc)
		if g.fresh {
			cc.close()
		}
		return err
	})
}

func (g *dialGen) roundTrip(cc *clientConn) error {
	if cc.c == nil {
		c, err := g.dial()
		if err != nil {
			return err
		}
		cc.c, cc.br = c, bufio.NewReaderSize(c, 32<<10)
	}
	return cc.roundTrip("", g.req)
}

func (g *dialGen) close() {
	for i := range g.conns {
		g.conns[i].close()
	}
}

// waitServing sends one request at a time until one is answered 200, for
// at most 20 s: the TLS baseline, which waitReady cannot ask over plain
// HTTP.
func (g *dialGen) waitServing(p *proxyProc) error {
	var cc clientConn
	defer cc.close()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = g.roundTrip(&cc); err == nil {
			return nil
		}
		cc.close()
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v)", p.name, p.cmd.ProcessState)
		default:
		}
	}
	return fmt.Errorf("%s did not answer through TLS within 20s: %v", p.name, err)
}

func dialTCP(addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
}

// dialTLS is a TLS connection straight to addr, with a full handshake
// each time (cfg has no session cache).
func dialTLS(addr string, cfg *tls.Config) func() (net.Conn, error) {
	return func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return handshake(c, cfg)
	}
}

// dialTunnel is what an app with HTTPS_PROXY does: CONNECT host:443 to
// the forward proxy at proxyAddr, then TLS with host inside the tunnel.
func dialTunnel(proxyAddr, host string, cfg *tls.Config) func() (net.Conn, error) {
	connect := fmt.Appendf(nil, "CONNECT %s:443 HTTP/1.1\r\nHost: %[1]s:443\r\nUser-Agent: authproxy-bench\r\n\r\n", host)
	return func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(connect); err != nil {
			c.Close()
			return nil, err
		}
		br := bufio.NewReaderSize(c, 1024)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			c.Close()
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || br.Buffered() != 0 {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s: %s (%d bytes after it)", host, resp.Status, br.Buffered())
		}
		return handshake(c, cfg)
	}
}

func handshake(c net.Conn, cfg *tls.Config) (net.Conn, error) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}
