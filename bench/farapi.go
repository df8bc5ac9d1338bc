package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// The -far mode: what authproxy does to an app's latency against a far
// API. The API (bench/farupstream, over TLS) runs in a network namespace
// behind an emulated round trip (farnet_linux.go); a client calls it
// directly, and through authproxy on loopback, each with keep-alive and
// without (a new connection and a new TLS session per call, as many
// legacy apps do). Through authproxy the app's new connection is a local
// one, and the proxy's connection to the API is warm.

// farOptions are -far's own settings.
type farOptions struct {
	rtt     time.Duration
	clients int // concurrent callers, one request in flight each
}

// farPath is a way for the app to reach the API.
type farPath struct {
	name string
	// client returns an http.Client for this path and the URL of /size/256.
	client func(keepAlive bool) (*http.Client, string)
}

// Forward mode (the app sets HTTP(S)_PROXY to authproxy) does not exist
// on this branch; once it does, it is one more farPath whose client has
// Transport.Proxy set to the proxy's URL and calls the API's own URL.

// farResult is one path and client kind's latencies, over every round.
type farResult struct {
	latency []time.Duration
	errors  int
}

func runFar(ctx context.Context, o options, fo farOptions) error {
	fn, err := newFarNet(fo.rtt)
	if err != nil {
		fmt.Fprintf(o.out, "# -far skipped: %v\n", err)
		return nil
	}
	defer fn.close()
	dir, err := os.MkdirTemp("", "authproxy-bench-far")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	authproxyBin := o.authproxy
	if authproxyBin == "" {
		if authproxyBin, err = goBuild(dir, "github.com/authproxy/authproxy", "authproxy"); err != nil {
			return err
		}
	}
	farBin, err := goBuild(dir, "github.com/authproxy/authproxy/bench/farupstream", "farupstream")
	if err != nil {
		return err
	}
	pool, err := writeFarCert(dir, fn.nsAddr)
	if err != nil {
		return err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devNull.Close()
	fmt.Fprintf(o.out, "# far API: %s round trip (each packet delayed on the TUN link %s, the API in netns %s), API at https://%s:8443; %d callers; %d rounds of %s\n",
		fo.rtt, fn.hostIf, fn.ns, fn.nsAddr, fo.clients, o.rounds, o.duration)
	fmt.Fprintf(o.out, "# load average at start: %s\n", loadAverage())
	for _, api := range farAPIs {
		if err := farVariant(ctx, o, fo, fn, farBin, authproxyBin, dir, pool, api, devNull); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.out, "\n# forward mode: not measured (it does not exist on this branch; see farPath)\n# load average at end: %s\n", loadAverage())
	return nil
}

// farAPI is how the far API serves.
type farAPI struct {
	what         string
	http2        bool // offers HTTP/2 through ALPN
	tls12        bool // TLS 1.2 at most
	connRequests int  // closes an HTTP/1.1 connection after this many requests; 0: never
}

var farAPIs = []farAPI{
	{what: "HTTP/2 offered (ALPN), TLS 1.3", http2: true},
	{what: "HTTP/1.1 only, TLS 1.3", http2: false},
	// Where the proxy must reconnect for every request (some APIs close
	// each connection; most close after some number of requests): over
	// TLS 1.2 a full handshake takes two round trips, a resumed one one.
	{what: "HTTP/1.1 only, TLS 1.2, one request per connection", tls12: true, connRequests: 1},
}

// farVariant measures every path against one way of serving the API.
func farVariant(ctx context.Context, o options, fo farOptions, fn *farNet, farBin, authproxyBin, dir string, pool *x509.CertPool, fa farAPI, devNull *os.File) error {
	api := fn.nsAddr + ":8443"
	cmd := fn.command(farBin, "-listen", api, "-cert", filepath.Join(dir, "far.crt"), "-key", filepath.Join(dir, "far.key"),
		fmt.Sprintf("-http2=%t", fa.http2), fmt.Sprintf("-tls12=%t", fa.tls12), fmt.Sprintf("-conn-requests=%d", fa.connRequests))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitTCP(ctx, api, 10*time.Second); err != nil {
		return fmt.Errorf("the far API: %w", err)
	}
	fmt.Fprintf(o.out, "\n## far API, %s\n", fa.what)

	direct := farPath{name: "direct", client: func(keepAlive bool) (*http.Client, string) {
		// A legacy app's client: HTTP/1.1, no session cache.
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: fo.clients}
		return &http.Client{Transport: appToken{tr}, Timeout: 30 * time.Second}, "https://" + api + "/size/256"
	}}
	paths := []farPath{direct}
	binaries := map[string]string{"authproxy": authproxyBin}
	if o.before != "" {
		binaries["before"] = o.before
	}
	var procs []*proxyProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, name := range []string{"authproxy", "before"} {
		bin, ok := binaries[name]
		if !ok {
			continue
		}
		p, first, err := startFarAuthproxy(ctx, name, bin, dir, "https://"+api, devNull)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		fmt.Fprintf(o.out, "%s: first request after start (token fetched from the far endpoint, then a new connection to the API): %s\n", name, first.Round(100*time.Microsecond))
		addr := p.addr
		paths = append(paths, farPath{name: name, client: func(keepAlive bool) (*http.Client, string) {
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: fo.clients}
			return &http.Client{Transport: tr, Timeout: 30 * time.Second}, "http://" + addr + "/size/256"
		}})
	}
	first, err := timeOne(direct, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "direct: one call on a new connection (TCP, TLS, request): %s\n", first.Round(100*time.Microsecond))

	results := map[string]*farResult{}
	key := func(path string, ka bool) string { return fmt.Sprintf("%s/%t", path, ka) }
	for r := range o.rounds {
		for i := range paths {
			p := paths[(i+r)%len(paths)]
			for _, ka := range []bool{true, false} {
				if err := ctx.Err(); err != nil {
					return err
				}
				res := results[key(p.name, ka)]
				if res == nil {
					res = &farResult{}
					results[key(p.name, ka)] = res
				}
				lat, errs := farLoad(p, ka, fo.clients, o.warmup, o.duration)
				res.latency = append(res.latency, lat...)
				res.errors += errs
			}
		}
	}
	fmt.Fprintln(o.out, "| client | path | requests | p50 | p99 | errors |")
	fmt.Fprintln(o.out, "|---|---|---|---|---|---|")
	for _, ka := range []bool{true, false} {
		for _, p := range paths {
			res := results[key(p.name, ka)]
			slices.Sort(res.latency)
			fmt.Fprintf(o.out, "| %s | %s | %d | %s | %s | %d |\n", clientKind(ka), p.name, len(res.latency),
				percentile(res.latency, 50).Round(10*time.Microsecond), percentile(res.latency, 99).Round(10*time.Microsecond), res.errors)
		}
	}
	for _, name := range []string{"authproxy", "before"} {
		if _, ok := binaries[name]; !ok {
			continue
		}
		for _, ka := range []bool{true, false} {
			via, straight := results[key(name, ka)].latency, results[key("direct", ka)].latency
			fmt.Fprintf(o.out, "%s/direct, %s: p50 %.3f, p99 %.3f\n", name, clientKind(ka),
				ratioOf(percentile(via, 50), percentile(straight, 50)), ratioOf(percentile(via, 99), percentile(straight, 99)))
		}
	}
	return nil
}

func clientKind(keepAlive bool) string {
	if keepAlive {
		return "keep-alive"
	}
	return "new connection per call"
}

func ratioOf(a, b time.Duration) float64 { return float64(a) / float64(b) }

// farLoad runs clients callers, one request in flight each, for warmup
// (not counted) and then d, and returns the latencies of the 200s.
func farLoad(p farPath, keepAlive bool, clients int, warmup, d time.Duration) ([]time.Duration, int) {
	client, url := p.client(keepAlive)
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	start := time.Now()
	measureFrom, deadline := start.Add(warmup), start.Add(warmup+d)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			e := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := getOK(client, url)
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					e++
					time.Sleep(10 * time.Millisecond)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, errs
}

func getOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// timeOne is the latency of one call on a client of its own.
func timeOne(p farPath, keepAlive bool) (time.Duration, error) {
	client, url := p.client(keepAlive)
	defer client.CloseIdleConnections()
	t0 := time.Now()
	err := getOK(client, url)
	return time.Since(t0), err
}

// startFarAuthproxy starts authproxy in front of the far API and times
// its first request, which fetches the token from the far token endpoint
// and opens the first connection to the API.
func startFarAuthproxy(ctx context.Context, name, binary, dir, apiURL string, devNull *os.File) (*proxyProc, time.Duration, error) {
	sub := filepath.Join(dir, name+"-config")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return nil, 0, err
	}
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := firstErr(err1, err2); err != nil {
		return nil, 0, err
	}
	ca := filepath.Join(dir, "far.crt")
	config := fmt.Sprintf(`listen: %s
admin: {listen: %s}
log: {level: info, format: json}
store: {type: memory}
upstreams:
  api:
    target: %s
    path_prefix: ""
    tls: {ca_file: %s}
    token: {url: "%s/token", client_id: bench, client_secret: bench-secret, tls: {ca_file: %s}}
`, addr, admin, apiURL, ca, apiURL, ca)
	path := filepath.Join(sub, "proxy.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, 0, err
	}
	p, err := startProc(name, binary, []string{"--config", path}, nil, devNull)
	if err != nil {
		return nil, 0, err
	}
	p.addr, p.metrics = addr, "http://"+admin+"/metrics"
	if err := waitTCP(ctx, addr, 20*time.Second); err != nil {
		p.stop()
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	first, err := timeOne(farPath{client: func(bool) (*http.Client, string) {
		return &http.Client{Timeout: 30 * time.Second}, "http://" + addr + "/size/256"
	}}, false)
	if err != nil {
		p.stop()
		return nil, 0, fmt.Errorf("%s: first request: %w", name, err)
	}
	return p, first, nil
}

// waitTCP waits until addr accepts a connection.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not accept connections within %s: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFarCert writes a self-signed certificate for the far API's
// address, far.crt and far.key in dir, and returns a pool trusting it.
func writeFarCert(dir, ip string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "far API"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := firstErr(os.WriteFile(filepath.Join(dir, "far.crt"), certPEM, 0o644),
		os.WriteFile(filepath.Join(dir, "far.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool, nil
}

// appToken sets the Authorization header an app calling the API directly
// sends itself.
type appToken struct{ base http.RoundTripper }

func (t appToken) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer app-own-token")
	return t.base.RoundTrip(req)
}

func (t appToken) CloseIdleConnections() {
	t.base.(interface{ CloseIdleConnections() }).CloseIdleConnections()
}
