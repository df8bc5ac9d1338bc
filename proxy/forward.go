package proxy

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Defaults of ForwardLimits.
const (
	DefaultMaxTunnels       = 1024
	DefaultMaxHandshakes    = 64
	DefaultHandshakeTimeout = 10 * time.Second
)

// ForwardLimits bound the forward proxy's memory and work, whatever its
// clients do. The zero value of each field has the meaning its comment
// gives.
type ForwardLimits struct {
	// MaxTunnels bounds the CONNECT tunnels open at once; one more gets
	// 503. Zero means DefaultMaxTunnels.
	MaxTunnels int
	// MaxHandshakes bounds the TLS handshakes the proxy works on at once,
	// from a client's hello to the proxy's signature; more wait, within
	// HandshakeTimeout. A client slow to send its hello or its Finished
	// holds none. Zero means DefaultMaxHandshakes.
	MaxHandshakes int
	// HandshakeTimeout bounds a tunnel's TLS handshake, the wait for it,
	// and the dial of a pass-through host. Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ReadHeaderTimeout and IdleTimeout are those of the requests inside
	// a tunnel, as of the proxy's own listener; IdleTimeout also closes a
	// pass-through tunnel that carries nothing either way for as long.
	// Zero: none.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers inside a tunnel; zero
	// means net/http's default.
	MaxHeaderBytes int
	// Dial connects to a pass-through host; nil means a net.Dialer that
	// refuses loopback, link-local, unspecified and EC2's IPv6 metadata
	// addresses (a name that resolves to the proxy's own host or a cloud
	// metadata service).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Wrap, if set, wraps the handler of the requests inside tunnels, as
	// the app wraps the listener's (to count requests in flight).
	Wrap func(http.Handler) http.Handler
	// Log receives the inner server's errors; nil discards them.
	Log logrus.FieldLogger
}

// ForwardServer is the forward proxy (HTTP_PROXY, HTTPS_PROXY): serve it
// as an http.Handler on a listener of its own. Every request, plain or
// inside a tunnel, is answered by the Handler current returns at the
// time (a reload swaps it), as a request to the proxy's own listener is:
// the forward proxy adds ways in, not another proxy.
//
// A tunnel to an upstream's host is decrypted with a certificate minted
// for that host and served by one inner http.Server (HTTP/1.1 and HTTP/2
// by ALPN, keep-alive); a pass-through host is tunnelled blindly.
type ForwardServer struct {
	current    func() *Handler
	limits     ForwardLimits
	tunnels    chan struct{} // a slot per open tunnel
	handshakes chan struct{} // a slot per handshake under way
	inner      *http.Server
	innerLn    *tunnelListener
	innerDone  chan struct{} // closed once the inner server's Serve has returned

	mu     sync.Mutex
	closed bool
	blind  map[net.Conn]struct{} // pass-through tunnels' connections, closed at shutdown
	wg     sync.WaitGroup        // pass-through tunnels
}

// NewForwardServer starts the inner server of the tunnels; Shutdown or
// Close stops it.
func NewForwardServer(current func() *Handler, limits ForwardLimits) *ForwardServer {
	if limits.MaxTunnels <= 0 {
		limits.MaxTunnels = DefaultMaxTunnels
	}
	if limits.MaxHandshakes <= 0 {
		limits.MaxHandshakes = DefaultMaxHandshakes
	}
	if limits.HandshakeTimeout <= 0 {
		limits.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if limits.Dial == nil {
		d := &net.Dialer{Timeout: limits.HandshakeTimeout, Control: refuseLocal}
		limits.Dial = d.DialContext
	}
	f := &ForwardServer{
		current: current, limits: limits,
		tunnels: make(chan struct{}, limits.MaxTunnels), handshakes: make(chan struct{}, limits.MaxHandshakes),
		innerLn: newTunnelListener(), innerDone: make(chan struct{}), blind: map[net.Conn]struct{}{},
	}
	var inner http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tun, _ := r.Context().Value(tunnelKey{}).(*tunnel)
		if tun == nil { // not from a tunnel: cannot be, and is never routed
			// Refused before serve, with a state of its own for writeError.
			r = r.WithContext(&newRequestState(r.Context(), time.Time{}).ctx)
			writeError(w, r, "", errTunnelForm)
			return
		}
		f.current().serve(w, r, f, tun)
	})
	if limits.Wrap != nil {
		inner = limits.Wrap(inner)
	}
	f.inner = &http.Server{
		Handler:           inner,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ConnContext:       tunnelContext,
	}
	if limits.Log != nil {
		f.inner.ErrorLog = log.New(logWriter{limits.Log}, "", 0)
	}
	go func() {
		defer close(f.innerDone)
		f.inner.Serve(f.innerLn)
	}()
	return f
}

// ServeHTTP serves the forward proxy's listener.
func (f *ForwardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.current().serve(w, r, f, nil)
}

// route sends a forward request on its way once checkRequest has let it
// through: a CONNECT into a tunnel, anything else to the upstream whose
// host it named.
func (f *ForwardServer) route(h *Handler, rec *responseRecorder, r *http.Request, st *requestState, tun *tunnel) {
	rt := h.hosts[st.info.host]
	if r.Method == http.MethodConnect {
		if rt == nil {
			f.passThrough(rec, r, st)
		} else {
			f.intercept(h, rec, r, st, rt)
		}
		return
	}
	st.info.upstream = rt.name
	rt.proxy.ServeHTTP(rec, r)
}

// Shutdown stops taking tunnels, lets the requests inside them finish
// within ctx, and closes the pass-through tunnels, whose traffic cannot
// be drained.
func (f *ForwardServer) Shutdown(ctx context.Context) error {
	f.closeBlind()
	f.innerLn.Close()
	err := f.inner.Shutdown(ctx)
	f.wg.Wait()
	<-f.innerDone
	return err
}

// Close closes every tunnel at once. Shutdown and Close may each be
// called more than once.
func (f *ForwardServer) Close() error {
	f.closeBlind()
	f.innerLn.Close()
	err := f.inner.Close()
	f.wg.Wait()
	<-f.innerDone
	return err
}

func (f *ForwardServer) closeBlind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for c := range f.blind {
		c.Close()
	}
}

// takeTunnel takes a tunnel's slot; false if every one is taken.
func (f *ForwardServer) takeTunnel() (release func(), ok bool) {
	select {
	case f.tunnels <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-f.tunnels }) }, true
	default:
		return nil, false
	}
}

var errTooManyTunnels = &requestError{failTooManyTunnels, "the forward proxy has as many tunnels open as it allows; try again later"}

// refuseLocal is the pass-through dialer's Control: a pass-through name
// must not lead to the proxy's own host (its admin port, say) or to a
// cloud metadata service, whatever its DNS says.
func refuseLocal(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.Equal(awsMetadataIPv6) {
		return errors.New("a pass-through host resolves to a loopback, link-local, unspecified or cloud metadata address: refused")
	}
	return nil
}

// awsMetadataIPv6 is EC2's instance metadata service over IPv6: a unique
// local address, which IsLinkLocalUnicast does not cover (the IPv4 one,
// 169.254.169.254, and every other cloud's, are link-local).
var awsMetadataIPv6 = net.ParseIP("fd00:ec2::254")

// tunnelListener hands the inner server the tunnels' connections, once
// their TLS handshakes are done.
type tunnelListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newTunnelListener() *tunnelListener {
	return &tunnelListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *tunnelListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// push hands c to the inner server, or closes it once the listener is.
func (l *tunnelListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *tunnelListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *tunnelListener) Addr() net.Addr { return tunnelAddr{} }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }
