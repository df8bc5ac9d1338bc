package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Attacks on the forward proxy by a hostile client: names that are not
// host names, requests inside a tunnel that name another host, smuggling
// past the tunnel's checks.

// inTunnel opens a tunnel to api.test.example:443 and a TLS connection
// inside it speaking HTTP/1.1, for requests written by hand.
func (ft *forwardTest) inTunnel(t *testing.T) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	resp, conn := ft.connect(t, "api.test.example:443", "")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: "api.test.example", RootCAs: ft.clientCAs, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc, bufio.NewReader(tc)
}

// A CONNECT's host must be a host name: an IPv6 literal with a zone
// that ends like a pass-through suffix is an IP address all the same,
// and other bytes no DNS name has are never dialled.
func TestForwardRefusesNamesThatAreNotHostNames(t *testing.T) {
	ft := startForward(t, forwardSetup{opts: Options{Forward: Forward{PassThrough: []string{"*.blobs.example:443"}}}})
	for _, target := range []string{
		"[2001:db8::1%25.blobs.example]:443",
		"[::1%25.blobs.example]:443",
		"[fe80::a9fe:a9fe%25.blobs.example]:443",
		".blobs.example:443",
		"a..blobs.example:443",
		"%C3%A9.blobs.example:443",
		"-x.blobs.example:443",
		// Suffix look-alikes of the pattern and the pattern's own name.
		"evilblobs.example:443",
		"blobs.example:443",
		"blobs.example.evil:443",
		"v1.blobs.example.:8443",
	} {
		resp, _ := ft.connect(t, target, "")
		resp.Body.Close()
		if resp.StatusCode == 200 || resp.StatusCode >= 500 {
			t.Errorf("CONNECT %s: %d, want a refusal", target, resp.StatusCode)
		}
	}
	if n := ft.dials.Load(); n != 0 {
		t.Errorf("%d connections made for names that are not host names", n)
	}
}

// Inside a tunnel to api, every spelling of another host is refused and
// reaches no upstream; the spellings of api's own name are served.
func TestForwardTunnelHostSpellings(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"api.test.example", true},
		{"API.Test.Example.", true},
		{"api.test.example:443", true},
		{"other.test.example", false},
		{"OTHER.test.example.", false},
		{"api.test.example:8443", false},
		{"api.test.example:80", false},
		{"api.test.example.other.test.example", false},
		{"127.0.0.1", false},
		{"[::1]:443", false},
		{"api%2etest.example", false},
		{"xn--api-test-example", false},
	} {
		tc, br := ft.inTunnel(t)
		fmt.Fprintf(tc, "GET /x HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic c2VjcmV0LXByb3h5LWtleQ==\r\n\r\n", tt.host)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("Host %s: %v", tt.host, err)
		}
		resp.Body.Close()
		if (resp.StatusCode == 200) != tt.ok {
			t.Errorf("Host %s: %d, want served %v", tt.host, resp.StatusCode, tt.ok)
		}
		tc.Close()
	}
	if n := len(ft.other.requests()); n != 0 {
		t.Errorf("the other upstream got %d requests", n)
	}
	for _, r := range ft.api.requests() {
		if r.header.Get("Proxy-Authorization") != "" {
			t.Error("Proxy-Authorization sent inside the tunnel reached the upstream")
		}
	}
	if strings.Contains(ft.proxy.logged(), "c2VjcmV0LXByb3h5LWtleQ") {
		t.Error("Proxy-Authorization is in the log")
	}
}

// Inside a tunnel: TRACE, an h2c upgrade, absolute form and CONNECT are
// refused, and none of them, nor OPTIONS * (which net/http answers
// itself), reaches an upstream.
func TestForwardTunnelSmuggling(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	for _, raw := range []string{
		"TRACE /x HTTP/1.1\r\nHost: api.test.example\r\n\r\n",
		"track /x HTTP/1.1\r\nHost: api.test.example\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: api.test.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: H2C\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
		"GET http://api.test.example/x HTTP/1.1\r\nHost: api.test.example\r\n\r\n",
		"CONNECT other.test.example:443 HTTP/1.1\r\nHost: other.test.example:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: api.test.example\r\n\r\n",
	} {
		tc, br := ft.inTunnel(t)
		io.WriteString(tc, raw)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 && !strings.HasPrefix(raw, "OPTIONS *") {
			t.Errorf("%q: %d, want a refusal", raw, resp.StatusCode)
		}
		tc.Close()
	}
	if n := len(ft.api.requests()) + len(ft.other.requests()); n != 0 {
		t.Errorf("%d requests reached an upstream", n)
	}
}

// Plaintext sent right after a CONNECT to an upstream's host, before any
// TLS, is never served as a request.
func TestForwardPlaintextAfterConnectIsNotServed(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	conn, err := net.Dial("tcp", ft.proxyURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "CONNECT api.test.example:443 HTTP/1.1\r\nHost: api.test.example:443\r\nContent-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\nHost: api.test.example\r\n\r\n")
	io.ReadAll(conn) // the 200, then the handshake fails and the tunnel closes
	if n := len(ft.api.requests()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// User info in an absolute-form URI goes nowhere: not to the upstream,
// not to the log.
func TestForwardUserinfoInTheURIGoesNowhere(t *testing.T) {
	ft := startForward(t, forwardSetup{})
	status, _ := rawRequest(t, ft.proxyURL.Host, "GET http://user:s3cret-pw@api.test.example/x HTTP/1.1\r\nHost: api.test.example\r\n\r\n")
	if status != 200 {
		t.Fatalf("%d", status)
	}
	for _, r := range ft.api.requests() {
		if strings.Contains(fmt.Sprint(r.header), "s3cret") || strings.Contains(fmt.Sprint(r.header), "dXNlcjpzM2NyZXQtcHc") {
			t.Errorf("the URI's user info reached the upstream: %v", r.header)
		}
	}
	if strings.Contains(ft.proxy.logged(), "s3cret") {
		t.Error("the URI's user info is in the log")
	}
}

// Clients whose TLS handshakes never finish hold no handshake slot:
// another client's handshake goes ahead while they wait for their
// timeout. One stalls after its hello (it never sends its Finished), one
// before it.
func TestForwardStalledHandshakesDoNotStarveOthers(t *testing.T) {
	ft := startForward(t, forwardSetup{limits: ForwardLimits{MaxHandshakes: 1, HandshakeTimeout: time.Hour}})
	resp, conn := ft.connect(t, "api.test.example:443", "")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	hello, stop := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go tls.Client(conn, &tls.Config{ServerName: "api.test.example", RootCAs: ft.clientCAs,
		VerifyConnection: func(tls.ConnectionState) error { close(hello); <-stop; return nil }}).Handshake()
	<-hello                                             // the proxy has signed its part and waits for the client's
	resp, _ = ft.connect(t, "api.test.example:443", "") // then says nothing
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	// Not a timing dependence: with a slot held, this handshake would
	// wait out the stalled ones' hour; the deadline only bounds a failure.
	resp, conn = ft.connect(t, "api.test.example:443", "")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	tc := tls.Client(conn, &tls.Config{ServerName: "api.test.example", RootCAs: ft.clientCAs})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("a handshake behind two stalled ones: %v", err)
	}
}

// The pass-through dialer refuses every address by which a name could
// lead to the proxy's own host or a cloud metadata service, AWS's IPv6
// one (a unique local address, not link-local) included, and takes the
// others.
func TestRefuseLocalAddresses(t *testing.T) {
	for addr, refused := range map[string]bool{
		"127.0.0.1:443": true, "127.1.2.3:443": true, "[::1]:443": true, "[::ffff:127.0.0.1]:443": true,
		"0.0.0.0:443": true, "[::]:443": true,
		"169.254.169.254:80": true, "[::ffff:169.254.169.254]:80": true, "[fe80::1]:443": true,
		"[fd00:ec2::254]:80": true,
		"93.184.215.14:443":  false, "10.1.2.3:443": false, "[2001:db8::1]:443": false, "[fd00:ec2::253]:443": false,
	} {
		if err := refuseLocal("tcp", addr, nil); (err != nil) != refused {
			t.Errorf("%s: %v, want refused %v", addr, err, refused)
		}
	}
}

// The signing key a handshake slot is given back by serves TLS 1.2 as
// well as 1.3.
func TestForwardTunnelTLS12(t *testing.T) {
	ft := startForward(t, forwardSetup{limits: ForwardLimits{MaxHandshakes: 1}})
	for range 3 { // each needs the one slot given back
		resp, conn := ft.connect(t, "api.test.example:443", "")
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %d", resp.StatusCode)
		}
		tc := tls.Client(conn, &tls.Config{ServerName: "api.test.example", RootCAs: ft.clientCAs, MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
		io.WriteString(tc, "GET /x HTTP/1.1\r\nHost: api.test.example\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil || resp.StatusCode != 200 || tc.ConnectionState().Version != tls.VersionTLS12 {
			t.Fatalf("TLS 1.2 inside the tunnel: %v %v", resp, err)
		}
		tc.Close()
	}
}
