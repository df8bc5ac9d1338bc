package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/testpki"
	"github.com/authproxy/authproxy/pki"
	"github.com/sirupsen/logrus"
)

// forwardTest is a forward proxy in front of two upstreams, api and
// other, each an HTTPS server on 127.0.0.1 with a certificate from a
// test CA their transports trust, reached by the names
// api.test.example and other.test.example.
type forwardTest struct {
	proxy      testProxy
	proxyURL   *url.URL
	api, other *fakeUpstream
	clientCAs  *x509.CertPool // the forward proxy's CA, which clients trust
	dials      atomic.Int32   // pass-through dials
	fw         *ForwardServer
	// apiTransport is a transport trusting the upstreams' CA.
	apiTransport func() http.RoundTripper
}

type forwardSetup struct {
	opts   Options
	limits ForwardLimits
	// untrusted: the upstreams' transports do not trust their CA.
	untrusted bool
	answer    func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)
}

func newTLSUpstream(t testing.TB, ca *testpki.CA, answer func(w http.ResponseWriter, r *http.Request, rec upstreamRecord)) *fakeUpstream {
	u := newUpstream(t, answer)
	u.Server.Close()
	u.Server = httptest.NewUnstartedServer(u.Server.Config.Handler)
	u.Server.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Loopback(t).TLS}}
	u.Server.StartTLS()
	t.Cleanup(u.Close)
	return u
}

func startForward(t testing.TB, s forwardSetup) *forwardTest {
	t.Helper()
	upstreamCA := testpki.NewCA(t, "upstream CA")
	ft := &forwardTest{api: newTLSUpstream(t, upstreamCA, s.answer), other: newTLSUpstream(t, upstreamCA, nil)}
	transport := func() http.RoundTripper {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if !s.untrusted {
			tr.TLSClientConfig = &tls.Config{RootCAs: upstreamCA.Pool()}
		}
		return tr
	}
	ft.apiTransport = transport
	dir := t.TempDir()
	if _, _, err := pki.WriteCA(dir, []string{"test.example"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, pki.CertFileName), filepath.Join(dir, pki.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	ft.clientCAs = x509.NewCertPool()
	ft.clientCAs.AddCert(ca.Cert)
	minter, err := pki.NewMinter(ca, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.Forward.Certificates == nil {
		s.opts.Forward.Certificates = minter
	}
	ups := []Upstream{
		{Name: "api", Target: mustURL(t, ft.api.URL), Tokens: &fakeTokens{}, ReplayOn: []int{401}, MaxReplayBody: 1 << 20,
			Hosts: []string{"api.test.example:443", "api.test.example:80"}, Transport: transport()},
		{Name: "other", PathPrefix: "/other", Target: mustURL(t, ft.other.URL), Tokens: &fakeTokens{},
			Hosts: []string{"other.test.example:443"}, Transport: transport()},
	}
	h, err := New(ups, withLog(t, &s.opts, &ft.proxy))
	if err != nil {
		t.Fatal(err)
	}
	if s.limits.Dial == nil {
		// Pass-through hosts are this test's names for its own servers.
		s.limits.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ft.dials.Add(1)
			host, _, _ := net.SplitHostPort(addr)
			if host == "pass.test.example" || host == "v1.blobs.example" {
				return (&net.Dialer{}).DialContext(ctx, network, ft.other.Listener.Addr().String())
			}
			return nil, fmt.Errorf("test dialer: %s is no test server", addr)
		}
	}
	ft.fw = NewForwardServer(func() *Handler { return h }, s.limits)
	srv := httptest.NewServer(ft.fw)
	t.Cleanup(func() { srv.Close(); ft.fw.Close() })
	ft.proxy.Server = srv
	ft.proxyURL = mustURL(t, srv.URL)
	return ft
}

// withLog gives opts a JSON log that p reads the access lines of.
func withLog(t testing.TB, opts *Options, p *testProxy) Options {
	p.mu = &sync.Mutex{}
	p.logs = &bytes.Buffer{}
	logger := logrus.New()
	logger.Formatter = &logrus.JSONFormatter{}
	logger.Out = lockedWriter{p.mu, p.logs}
	opts.Log = logger
	return *opts
}

func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// client is an unmodified Go client with the proxy set, trusting the
// proxy's CA, the way HTTPS_PROXY and a CA file give it.
func (ft *forwardTest) client(proxyURL *url.URL) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             http.ProxyURL(proxyURL),
		TLSClientConfig:   &tls.Config{RootCAs: ft.clientCAs},
		ForceAttemptHTTP2: true,
	}}
}

func TestForwardTunnelSendsTheTokenToTheTargetOnly(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	c := ft.client(ft.proxyURL)
	for i := range 3 { // one tunnel, kept alive
		resp, err := c.Get("https://api.test.example/v1/gifs?q=cats")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("inside the tunnel: %s, want HTTP/2 by ALPN", resp.Proto)
		}
	}
	seen := ft.api.requests()
	if len(seen) != 3 {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
	r := seen[0]
	if r.header.Get("Authorization") != "Bearer t1" || r.path != "/v1/gifs" || r.query != "q=cats" || r.host != ft.api.Listener.Addr().String() {
		t.Errorf("upstream saw %+v", r)
	}
	if len(ft.other.requests()) != 0 {
		t.Error("the other upstream was sent a request")
	}
	lines := ft.proxy.accessLines(t)
	if len(lines) != 4 { // the CONNECT and three requests
		t.Fatalf("%d access lines: %v", len(lines), lines)
	}
	for _, l := range lines {
		if l["mode"] != "forward" || l["host"] != "api.test.example:443" || l["upstream"] != "api" || l["status"] != float64(200) {
			t.Errorf("access line %v", l)
		}
	}
	if lines[0]["method"] != "CONNECT" {
		t.Errorf("first line %v, want the CONNECT", lines[0])
	}
}

func TestForwardPlainHTTPAndReplayInsideTheTunnel(t *testing.T) {
	ft := startForward(t, forwardSetup{answer: rejectFirstToken})
	c := ft.client(ft.proxyURL)
	for _, u := range []string{"http://api.test.example/plain", "https://api.test.example/tunnelled"} {
		resp, err := c.Post(u, "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", u, resp.StatusCode)
		}
	}
	seen := ft.api.requests()
	// The first is refused (t1), replayed with t2; then t2 is accepted.
	if len(seen) != 3 || seen[0].header.Get("Authorization") != "Bearer t1" || seen[1].header.Get("Authorization") != "Bearer t2" ||
		string(seen[1].body) != "body" || seen[1].path != "/plain" || seen[2].path != "/tunnelled" {
		t.Errorf("upstream saw %+v", seen)
	}
}

// connect sends a CONNECT (with extra headers) and returns the answer
// and the connection, which the test closes.
func (ft *forwardTest) connect(t *testing.T, target, extra string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", ft.proxyURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, extra)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 200 && br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT's answer")
	}
	return resp, conn
}

func errorBodyOf(t *testing.T, resp *http.Response) errorBody {
	t.Helper()
	var e errorBody
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%d: not a JSON error: %v", resp.StatusCode, err)
	}
	return e
}

// Nothing but an upstream's host or a pass-through one is reached, and a
// refusal makes no connection anywhere.
func TestForwardRefusesHostsNoUpstreamLists(t *testing.T) {
	ft := startForward(t, forwardSetup{opts: Options{Forward: Forward{PassThrough: []string{"pass.test.example:443"}}}})
	for _, tt := range []struct{ target, want string }{
		{"evil.example:443", "evil.example:443 is not served"},
		{"127.0.0.1:443", "127.0.0.1:443 is an IP address"},
		{"[::1]:443", "IP address"},
		{ft.api.Listener.Addr().String(), "IP address"}, // the target itself, by address
		{"api.test.example:8443", "api.test.example:8443 is not served"},
		{"api.test.example.evil.example:443", "is not served"},
		{"pass.test.example:8443", "is not served"}, // passed through on 443 only
		{"xapi.test.example:443", "is not served"},
	} {
		resp, _ := ft.connect(t, tt.target, "")
		e := errorBodyOf(t, resp)
		if resp.StatusCode != 403 || e.Error != "host_not_allowed" || !strings.Contains(e.Detail, tt.want) {
			t.Errorf("CONNECT %s: %d %+v, want 403 saying %q", tt.target, resp.StatusCode, e, tt.want)
		}
	}
	// Plain HTTP the same way; and never to a pass-through host.
	c := ft.client(ft.proxyURL)
	for _, u := range []string{"http://evil.example/", "http://127.0.0.1:1/", "http://pass.test.example:443/", "http://other.test.example/"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("GET %s: %d, want 403", u, resp.StatusCode)
		}
	}
	if n := ft.dials.Load(); n != 0 {
		t.Errorf("%d connections made for refused hosts", n)
	}
	if len(ft.api.requests())+len(ft.other.requests()) != 0 {
		t.Error("an upstream was sent a refused request")
	}
}

func TestForwardRefusesAnotherNameInsideTheTunnel(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	t.Run("SNI", func(t *testing.T) {
		resp, conn := ft.connect(t, "api.test.example:443", "")
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %d", resp.StatusCode)
		}
		tc := tls.Client(conn, &tls.Config{ServerName: "other.test.example", RootCAs: ft.clientCAs})
		if err := tc.Handshake(); err == nil {
			t.Fatal("a TLS handshake for other.test.example succeeded in the tunnel to api.test.example")
		}
	})
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run("Host/"+proto, func(t *testing.T) {
			// A client that asks the tunnel to api for other's host: by
			// the Host header (HTTP/1.1) or :authority (HTTP/2).
			c := &http.Client{Transport: &http.Transport{
				Proxy:             http.ProxyURL(ft.proxyURL),
				TLSClientConfig:   &tls.Config{RootCAs: ft.clientCAs, ServerName: "api.test.example"},
				ForceAttemptHTTP2: proto == "h2",
				DialTLSContext:    nil,
			}}
			req, _ := http.NewRequest("GET", "https://api.test.example/x", nil)
			req.Host = "other.test.example"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			e := errorBodyOf(t, resp)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(e.Detail, "other.test.example:443") {
				t.Errorf("%d %+v, want 421 naming the other host", resp.StatusCode, e)
			}
		})
	}
	// Absolute form inside the tunnel names a host too: refused.
	resp, conn := ft.connect(t, "api.test.example:443", "")
	resp.Body.Close()
	tc := tls.Client(conn, &tls.Config{ServerName: "api.test.example", RootCAs: ft.clientCAs, NextProtos: []string{"http/1.1"}})
	fmt.Fprint(tc, "GET https://other.test.example/x HTTP/1.1\r\nHost: other.test.example\r\n\r\n")
	inner, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if inner.StatusCode != 400 {
		t.Errorf("absolute form inside the tunnel: %d, want 400", inner.StatusCode)
	}
	if len(ft.api.requests())+len(ft.other.requests()) != 0 {
		t.Error("a request was routed across")
	}
	var handshake bool
	for _, l := range ft.proxy.accessLines(t) {
		handshake = handshake || l["error"] == "tunnel_handshake_failed"
	}
	if !handshake {
		t.Error("the refused handshake is not in the access log")
	}
}

func TestForwardProxyAuthorization(t *testing.T) {
	const key = "0123456789abcdef-key"
	ft := startForward(t, forwardSetup{opts: Options{Inbound: Inbound{APIKeys: []string{key}}}})
	for _, u := range []string{"https://api.test.example/x", "http://api.test.example/x"} {
		for _, user := range []*url.Userinfo{nil, url.UserPassword("app", "wrong-key-0123456789"), url.User(key)} {
			p := *ft.proxyURL
			p.User = user
			resp, err := ft.client(&p).Get(u)
			if err != nil {
				// Go's transport reports a refused CONNECT as an error.
				if !strings.Contains(err.Error(), "Proxy Authentication Required") {
					t.Errorf("%s as %v: %v", u, user, err)
				}
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") != `Basic realm="authproxy"` {
				t.Errorf("%s as %v: %d %v, want 407 with Proxy-Authenticate", u, user, resp.StatusCode, resp.Header)
			}
		}
		p := *ft.proxyURL
		p.User = url.UserPassword("app", key)
		resp, err := ft.client(&p).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s with the key: %d", u, resp.StatusCode)
		}
	}
	resp, _ := ft.connect(t, "api.test.example:443", "")
	if resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Errorf("CONNECT without a key: %d %v", resp.StatusCode, resp.Header)
	}
	for _, r := range ft.api.requests() {
		if r.header.Get("Proxy-Authorization") != "" || strings.Contains(fmt.Sprint(r.header), key) {
			t.Errorf("the proxy key reached the upstream: %v", r.header)
		}
	}
	if len(ft.api.requests()) != 2 {
		t.Errorf("upstream saw %d requests, want the 2 with the key", len(ft.api.requests()))
	}
	if strings.Contains(ft.proxy.logged(), key) {
		t.Error("the proxy key is in the log")
	}
}

func TestForwardTakesLoopbackOnlyUnlessAllowCIDRs(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	if got := (&Inbound{}).admitForward(&http.Request{RemoteAddr: "10.1.2.3:5555", Header: http.Header{}}, false); got != errForwardLoopback {
		t.Errorf("a non-loopback client without allow_cidrs: %v", got)
	}
	if got := (&Inbound{}).admitForward(&http.Request{RemoteAddr: "[::ffff:127.0.0.1]:5555", Header: http.Header{}}, false); got != nil {
		t.Errorf("a loopback client: %v", got)
	}
	ten := Inbound{AllowCIDRs: mustPrefixes(t, "10.0.0.0/8")}
	if got := ten.admitForward(&http.Request{RemoteAddr: "10.1.2.3:5555", Header: http.Header{}}, false); got != nil {
		t.Errorf("a client allow_cidrs lets in: %v", got)
	}
	_ = ft
}

func TestForwardPassThroughIsBlind(t *testing.T) {
	ft := startForward(t, forwardSetup{opts: Options{Forward: Forward{PassThrough: []string{"pass.test.example:443", "*.blobs.example:443"}}}})
	for _, host := range []string{"pass.test.example", "v1.blobs.example"} {
		resp, conn := ft.connect(t, host+":443", "")
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT %s: %d", host, resp.StatusCode)
		}
		// The real server's certificate, not one of the proxy's: the
		// client's TLS goes through untouched.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if issuer := tc.ConnectionState().PeerCertificates[0].Issuer.CommonName; issuer != "upstream CA" {
			t.Errorf("pass-through served a certificate from %q", issuer)
		}
		fmt.Fprint(tc, "GET /blind HTTP/1.1\r\nHost: x\r\n\r\n")
		inner, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil || inner.StatusCode != 200 {
			t.Fatalf("through the pass-through: %v %v", inner, err)
		}
		tc.Close()
	}
	for _, r := range ft.other.requests() {
		if r.header.Get("Authorization") != "" {
			t.Error("a pass-through request carried a token")
		}
	}
}

// The default dialer does not follow a pass-through name to the proxy's
// own host.
func TestForwardPassThroughNeverReachesLoopback(t *testing.T) {
	ft := startForward(t, forwardSetup{
		opts:   Options{Forward: Forward{PassThrough: []string{"localhost:" + ft0Port(t)}}},
		limits: ForwardLimits{Dial: (&net.Dialer{Control: refuseLocal}).DialContext},
	})
	resp, _ := ft.connect(t, "localhost:"+ft0Port(t), "")
	if resp.StatusCode != 502 {
		t.Errorf("pass-through to loopback: %d, want 502", resp.StatusCode)
	}
}

var ft0 struct {
	once sync.Once
	port string
}

// ft0Port is a port something listens on, on loopback.
func ft0Port(t *testing.T) string {
	ft0.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, ft0.port, _ = net.SplitHostPort(ln.Addr().String())
	})
	return ft0.port
}

func TestForwardVerifiesTheUpstreamsCertificate(t *testing.T) {
	ft := startForward(t, forwardSetup{untrusted: true})
	resp, err := ft.client(ft.proxyURL).Get("https://api.test.example/x")
	if err != nil {
		t.Fatal(err)
	}
	e := errorBodyOf(t, resp)
	resp.Body.Close()
	if resp.StatusCode != 502 || e.Error != "upstream_unreachable" || !strings.Contains(e.Detail, "certificate") {
		t.Errorf("%d %+v, want 502 for an upstream certificate the proxy does not trust", resp.StatusCode, e)
	}
}

func TestForwardCapsTunnels(t *testing.T) {
	ft := startForward(t, forwardSetup{limits: ForwardLimits{MaxTunnels: 1}})
	first, conn := ft.connect(t, "api.test.example:443", "")
	if first.StatusCode != 200 {
		t.Fatal(first.Status)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: "api.test.example", RootCAs: ft.clientCAs})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	second, _ := ft.connect(t, "api.test.example:443", "")
	if second.StatusCode != 503 || errorBodyOf(t, second).Error != "too_many_tunnels" {
		t.Errorf("second tunnel: %d", second.StatusCode)
	}
	tc.Close()
}

// The proxy's own listener does not change: absolute form and CONNECT
// are refused there, whatever hosts the upstreams list.
func TestReverseListenerStillRefusesForwardRequests(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, up.URL), Tokens: &fakeTokens{}, Hosts: []string{"api.test.example:80", "api.test.example:443"}})
	for _, raw := range []string{
		"GET http://api.test.example/x HTTP/1.1\r\nHost: api.test.example\r\n\r\n",
		"CONNECT api.test.example:443 HTTP/1.1\r\nHost: api.test.example:443\r\n\r\n",
	} {
		if status, _ := rawRequest(t, p.Listener.Addr().String(), raw); status != 400 {
			t.Errorf("%q: %d, want 400", raw, status)
		}
	}
	if len(up.requests()) != 0 {
		t.Error("forwarded")
	}
}
