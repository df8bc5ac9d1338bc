package proxy

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tunnel is what a CONNECT to an upstream's host opened: the requests
// inside it are for that host alone.
type tunnel struct {
	host string // "name:port", as the routes hold it
}

type tunnelKey struct{}

// tunnelContext is the inner server's ConnContext: it gives each
// connection's requests their tunnel.
func tunnelContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if t, ok := tc.NetConn().(*tunnelConn); ok {
			return context.WithValue(ctx, tunnelKey{}, t.tunnel)
		}
	}
	return ctx
}

// tunnelConn is a hijacked client connection: it reads first what the
// server had buffered of it, and gives back its tunnel's slot when
// closed.
type tunnelConn struct {
	net.Conn
	r       io.Reader
	tunnel  *tunnel
	release func()
}

func (c *tunnelConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *tunnelConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// hijack takes the client's connection over and says 200 to its CONNECT.
func hijack(rec *responseRecorder, release func()) (*tunnelConn, error) {
	conn, brw, err := http.NewResponseController(rec).Hijack()
	if err != nil {
		return nil, err
	}
	var r io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		// A client may send its TLS hello before it has read the 200.
		b, _ := brw.Reader.Peek(n)
		r = io.MultiReader(strings.NewReader(string(b)), conn)
	}
	rec.status = http.StatusOK
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	return &tunnelConn{Conn: conn, r: r, release: release}, nil
}

// intercept opens a tunnel to an upstream's host: it terminates the
// client's TLS with a certificate minted for the host, and hands the
// connection to the inner server, whose requests the Handler answers as
// any other, to the upstream's target. A client whose TLS names another
// host (SNI) is refused in the handshake.
func (f *ForwardServer) intercept(h *Handler, rec *responseRecorder, r *http.Request, st *requestState, rt *route) {
	info := &st.info
	info.upstream = rt.name
	name, _, _ := net.SplitHostPort(info.host)
	cert, err := h.forward.Certificates.Certificate(name)
	if err != nil {
		writeError(rec, r, rt.name, &requestError{failCertificate, fmt.Sprintf("no certificate for %s: %v", name, err)})
		return
	}
	release, ok := f.takeTunnel()
	if !ok {
		writeError(rec, r, rt.name, errTooManyTunnels)
		return
	}
	conn, err := hijack(rec, release)
	if err != nil {
		release()
		writeError(rec, r, rt.name, err)
		return
	}
	conn.tunnel = &tunnel{host: info.host}
	slot := &handshakeSlot{slots: f.handshakes}
	tlsConn := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if sni := strings.TrimSuffix(strings.ToLower(hello.ServerName), "."); sni != "" && sni != name {
				return nil, fmt.Errorf("the client's TLS names %q inside the tunnel to %s", hello.ServerName, info.host)
			}
			return slot.take(hello.Context(), cert)
		},
	})
	err = f.handshake(r.Context(), tlsConn)
	slot.release()
	if err != nil {
		tlsConn.Close()
		info.fail, info.err = failTunnelHandshake, err
		return
	}
	f.innerLn.push(tlsConn)
}

// handshake runs a tunnel's TLS handshake within HandshakeTimeout.
func (f *ForwardServer) handshake(ctx context.Context, c *tls.Conn) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.limits.HandshakeTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if err := c.HandshakeContext(ctx); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

// handshakeSlot is one of the MaxHandshakes slots, held by a handshake
// only while the proxy works for it: from the client's hello, once it
// has come, to the proxy's signature. A client that stalls before its
// hello or after the signature (never sending its Finished) holds none,
// so a few such clients cannot keep every other handshake waiting.
type handshakeSlot struct {
	slots chan struct{}
	mu    sync.Mutex
	held  bool
}

// take waits for a slot within ctx, and gives cert with a key that
// gives the slot back once it has signed.
func (s *handshakeSlot) take(ctx context.Context, cert *tls.Certificate) (*tls.Certificate, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, errors.New("no TLS handshake slot came free in time")
	}
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
	key, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return cert, nil // held to the handshake's end
	}
	signing := *cert
	signing.PrivateKey = releasingSigner{key, s}
	return &signing, nil
}

// release gives the slot back if it is held; it may be called more than
// once.
func (s *handshakeSlot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.held = false
		<-s.slots
	}
}

type releasingSigner struct {
	crypto.Signer
	slot *handshakeSlot
}

func (k releasingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	defer k.slot.release()
	return k.Signer.Sign(rand, digest, opts)
}

// passThrough tunnels a pass_through host blindly: no TLS of ours, no
// token. It returns when the tunnel closes.
func (f *ForwardServer) passThrough(rec *responseRecorder, r *http.Request, st *requestState) {
	release, ok := f.takeTunnel()
	if !ok {
		writeError(rec, r, "", errTooManyTunnels)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), f.limits.HandshakeTimeout)
	server, err := f.limits.Dial(ctx, "tcp", st.info.host)
	cancel()
	if err != nil {
		writeError(rec, r, "", err)
		return
	}
	client, err := hijack(rec, func() {})
	if err != nil {
		server.Close()
		writeError(rec, r, "", err)
		return
	}
	if !f.track(client, server) {
		client.Close()
		server.Close()
		return
	}
	defer f.untrack(client, server)
	f.splice(client, server)
}

func (f *ForwardServer) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	for _, c := range conns {
		f.blind[c] = struct{}{}
	}
	f.wg.Add(1)
	return true
}

func (f *ForwardServer) untrack(conns ...net.Conn) {
	f.mu.Lock()
	for _, c := range conns {
		delete(f.blind, c)
	}
	f.mu.Unlock()
	f.wg.Done()
}

// splice copies both ways until either side ends, or nothing moves
// either way for IdleTimeout, then closes both.
func (f *ForwardServer) splice(client, server net.Conn) {
	var last atomic.Int64 // unix nanoseconds of the last byte either way
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipe(server, client, f.limits.IdleTimeout, &last)
		closeWrite(server)
	}()
	pipe(client, server, f.limits.IdleTimeout, &last)
	closeWrite(client)
	wg.Wait()
	client.Close()
	server.Close()
}

// pipe copies src to dst. A read that waits idle is cut off unless the
// other direction moved meanwhile.
func pipe(dst, src net.Conn, idle time.Duration, last *atomic.Int64) {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
				continue
			}
			if !errors.Is(err, io.EOF) {
				dst.Close() // a broken or idle side ends the other too
			}
			return
		}
	}
}

// closeWrite half-closes c, so that the other side sees the end of what
// was sent while its answer may still come.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*tunnelConn); ok {
		c = tc.Conn
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
