// Package oidctest runs a real, independent OAuth 2.0 authorization server
// for tests: panva's oidc-provider (a certified OpenID implementation, from
// npm) on 127.0.0.1, over HTTPS with a private CA made per test. Our fake
// APIs agree with our reading of the RFCs; this server was written by
// someone else, so a test that passes against it shows that authproxy
// speaks the protocol, not only our idea of it.
//
// The server authenticates clients by every RFC 6749, 7523 and 8705 method
// the provider supports (client_secret_post, client_secret_basic,
// client_secret_jwt, private_key_jwt, tls_client_auth, none), refuses a
// reused client-assertion jti, rotates refresh tokens on every use, and
// has jwt-bearer (RFC 7523) and token-exchange (RFC 8693) grants whose
// requests are recorded for the test to check. See server.mjs.
//
// Without node on PATH the test is skipped, unless AUTHPROXY_REQUIRE_OIDC
// is set (as .ci/run does): then it fails, so that CI can never pass by
// skipping these tests. The npm packages are installed on first use with
// `npm ci` in this directory, once per machine.
package oidctest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/testpki"
)

// The grant types this server adds with the provider's extension API.
const (
	GrantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// GrantPassword is RFC 6749 4.3's, which the provider lacks.
	GrantPassword = "password"
)

// Options configures one server.
type Options struct {
	Clients []Client
	// Scopes are the scope values the server knows besides openid and
	// offline_access.
	Scopes []string
	// AccessTokenTTL defaults to the provider's (an hour; ten minutes
	// for client credentials).
	AccessTokenTTL time.Duration
	// Users are the password grant's users and their passwords; without
	// any, it lets every user in.
	Users map[string]string
	// DPoPNonces makes the token endpoint require a nonce of its own in
	// every DPoP proof (RFC 9449 8): the first proof without one is
	// refused with use_dpop_nonce. DPoP itself is always on.
	DPoPNonces bool
}

// Client is one registered client. The zero AuthMethod is the
// provider's default, client_secret_basic.
type Client struct {
	ID     string
	Secret string
	// AuthMethod is token_endpoint_auth_method.
	AuthMethod string
	// SigningAlg pins token_endpoint_auth_signing_alg; empty accepts any
	// the method allows.
	SigningAlg string
	// Keys are the public keys of a private_key_jwt client (its jwks).
	Keys []jose.JSONWebKey
	// GrantTypes defaults to client_credentials.
	GrantTypes   []string
	RedirectURIs []string
	// Scope limits the scopes the client may ask for; empty allows all.
	Scope string
	// SubjectDN (tls_client_auth_subject_dn, RFC 4514 form such as
	// "CN=app,O=authproxy tests") or SANDNS (tls_client_auth_san_dns)
	// names the certificate a tls_client_auth client must present.
	SubjectDN string
	SANDNS    string
	// DPoPBound (dpop_bound_access_tokens, RFC 9449 5.2) makes the
	// provider refuse this client's token requests without a DPoP proof.
	DPoPBound bool
}

// MarshalJSON writes the client's registration metadata.
func (c Client) MarshalJSON() ([]byte, error) {
	m := map[string]any{"client_id": c.ID}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("client_secret", c.Secret)
	set("token_endpoint_auth_method", c.AuthMethod)
	set("token_endpoint_auth_signing_alg", c.SigningAlg)
	set("scope", c.Scope)
	set("tls_client_auth_subject_dn", c.SubjectDN)
	set("tls_client_auth_san_dns", c.SANDNS)
	if len(c.Keys) > 0 {
		m["jwks"] = jose.JSONWebKeySet{Keys: c.Keys}
	}
	if c.DPoPBound {
		m["dpop_bound_access_tokens"] = true
	}
	if len(c.GrantTypes) > 0 {
		m["grant_types"] = c.GrantTypes
	}
	if len(c.RedirectURIs) > 0 {
		m["redirect_uris"] = c.RedirectURIs
		m["response_types"] = []string{"code"}
	}
	return json.Marshal(m)
}

// Server is one running provider.
type Server struct {
	// Issuer is https://127.0.0.1:PORT; TokenURL, AuthorizeURL and
	// IntrospectionURL (RFC 7662) are its endpoints.
	Issuer, TokenURL, AuthorizeURL, IntrospectionURL string
	// CA signed the server's certificate: trust it (CA.PEM as a ca_file).
	CA *testpki.CA
	// ClientCA is the CA the server trusts for tls_client_auth; sign
	// client certificates with ClientCert.
	ClientCA *testpki.CA

	t   testing.TB
	cmd *exec.Cmd
	log *os.File
	// stdin is held open for the server's life: it exits when it closes.
	stdin io.WriteCloser
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	node := requireNode(t)
	dir := sourceDir(t)
	ensurePackages(t, dir)

	s := &Server{t: t, CA: testpki.NewCA(t, "oidctest server CA"), ClientCA: testpki.NewCA(t, "oidctest client CA")}
	serverCert := s.CA.Loopback(t)
	tmp := t.TempDir()
	clients := opts.Clients
	if clients == nil {
		clients = []Client{} // JSON [], not null
	}
	cfg := map[string]any{
		"clients": clients,
		"scopes":  opts.Scopes,
		"users":   opts.Users,
		"tls": map[string]string{
			"key": string(serverCert.KeyPEM), "cert": string(serverCert.CertPEM),
			"client_ca": string(s.ClientCA.PEM),
		},
	}
	if opts.DPoPNonces {
		cfg["dpop_nonces"] = true
	}
	if opts.AccessTokenTTL > 0 {
		cfg["access_token_ttl"] = int(opts.AccessTokenTTL.Seconds())
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(tmp, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// A node that has not said READY in time is stopped, its state
	// logged, and started once more: a test should fail for what the
	// server does, not for one start that hung on a loaded machine.
	var port string
	for attempt := 1; ; attempt++ {
		if port, err = s.launch(node, dir, cfgPath, filepath.Join(tmp, fmt.Sprintf("server-%d.log", attempt))); err == nil {
			break
		}
		states, tail := threadStates(s.cmd), s.logTail()
		s.stop()
		if attempt == 2 {
			t.Fatalf("oidc-provider did not start, twice: %v; its threads were: %s\n%s", err, states, tail)
		}
		t.Logf("oidc-provider did not start (%v); starting it again. Its threads were: %s\n%s", err, states, tail)
	}
	t.Cleanup(s.stop)
	s.Issuer = "https://127.0.0.1:" + port
	s.TokenURL = s.Issuer + "/token"
	s.AuthorizeURL = s.Issuer + "/auth"
	s.IntrospectionURL = s.Issuer + "/token/introspection"
	s.waitDiscovery()
	return s
}

// launch starts the server process and waits for its READY line.
func (s *Server) launch(node, dir, cfgPath, logPath string) (port string, err error) {
	if s.log, err = os.Create(logPath); err != nil {
		return "", err
	}
	s.cmd = exec.Command(node, filepath.Join(dir, "server.mjs"), cfgPath)
	s.cmd.Dir = dir
	s.cmd.Stderr = s.log
	setProcessGroup(s.cmd)
	// The server exits when its stdin closes: if this process dies
	// without running the cleanup, the pipe closes and no node is left.
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return "", err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := s.cmd.Start(); err != nil {
		return "", fmt.Errorf("start oidc-provider: %w", err)
	}
	return readReady(stdout, s.log, 45*time.Second)
}

// threadStates says what each of the process's threads is doing (state
// and wait channel, from /proc), for a start that hung.
func threadStates(cmd *exec.Cmd) string {
	if cmd.Process == nil {
		return "not started"
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", cmd.Process.Pid))
	var b strings.Builder
	for _, task := range tasks {
		stat, _ := os.ReadFile(task + "/stat")
		wchan, _ := os.ReadFile(task + "/wchan")
		// stat is "pid (comm) state ...": the state follows the last ')'.
		state := "?"
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			state = string(stat[i+2])
		}
		fmt.Fprintf(&b, "%s:%s/%s ", filepath.Base(task), state, wchan)
	}
	return b.String()
}

// readReady reads the server's stdout until its "READY <port>" line, then
// copies the rest into log so the pipe never fills.
func readReady(stdout io.Reader, log io.Writer, timeout time.Duration) (string, error) {
	type ready struct {
		port string
		err  error
	}
	ch := make(chan ready, 1)
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if port, ok := strings.CutPrefix(strings.TrimSpace(line), "READY "); ok {
				ch <- ready{port: port}
				io.Copy(log, r)
				return
			}
			log.Write([]byte(line))
			if err != nil {
				ch <- ready{err: fmt.Errorf("server exited before it was ready (%v)", err)}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		return r.port, r.err
	case <-time.After(timeout):
		return "", fmt.Errorf("no READY line within %v", timeout)
	}
}

func (s *Server) waitDiscovery() {
	s.t.Helper()
	c := s.HTTPClient()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(s.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("oidc-provider discovery never answered: %v\n%s", err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server's process group: SIGTERM, then SIGKILL if it has
// not exited within five seconds.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if s.t.Failed() {
		s.t.Logf("oidc-provider log:\n%s", s.logTail())
	}
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	s.stdin.Close()
	signalGroup(s.cmd, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		signalGroup(s.cmd, syscall.SIGKILL)
		<-done
	}
	s.log.Close()
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// TLSConfig trusts the server's CA and presents cert when the server asks
// for one (nil: none).
func (s *Server) TLSConfig(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: s.CA.Pool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// HTTPClient trusts the server's CA and presents no client certificate.
func (s *Server) HTTPClient() *http.Client { return s.HTTPClientWithCert(nil) }

// HTTPClientWithCert trusts the server's CA and presents cert.
func (s *Server) HTTPClientWithCert(cert *tls.Certificate) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: s.TLSConfig(cert), DialContext: loopbackDial},
	}
}

// loopbackDial refuses any address but loopback, so a wrong redirect in a
// test cannot send traffic off the machine.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("oidctest: refusing to dial %s: only loopback", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// ClientCert signs a client certificate with ClientCA for subject, with
// dnsNames as its DNS SANs.
func (s *Server) ClientCert(subject pkix.Name, dnsNames ...string) testpki.Pair {
	s.t.Helper()
	return s.ClientCA.Issue(s.t, testpki.Leaf{Subject: subject, DNSNames: dnsNames})
}

// Browser is an HTTP client with a cookie jar that follows redirects, as
// a browser would, up to (not including) any URL that starts with
// stopAt; the test then reads the code from that last redirect.
func (s *Server) Browser(stopAt string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := s.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if stopAt != "" && strings.HasPrefix(req.URL.String(), stopAt) {
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return fmt.Errorf("more than 10 redirects")
		}
		return nil
	}
	return c
}

// Authorize plays the browser for an authorization request: it GETs
// authorizeURL, lets the server log in and consent on its own, and
// returns the query of the redirect to redirectURI (code and state, or
// error).
func (s *Server) Authorize(authorizeURL, redirectURI string) url.Values {
	s.t.Helper()
	resp, err := s.Browser(redirectURI).Get(authorizeURL)
	if err != nil {
		s.t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI) {
		s.t.Fatalf("authorize ended at %s with status %d, not at a redirect to %s\n%s", resp.Request.URL, resp.StatusCode, redirectURI, s.logTail())
	}
	return loc.Query()
}
