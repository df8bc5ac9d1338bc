package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/authproxy/authproxy/pki"
)

// The forward-proxy scenarios: an app with HTTPS_PROXY reaches
// the upstream through a CONNECT tunnel that authproxy decrypts with a
// leaf from its CA. Three processes take the same GETs to the same plain
// HTTP upstream:
//
//	authproxy  authproxy's forward proxy: CONNECT api.bench.test:443, TLS inside
//	reverse    authproxy's reverse listener, plain HTTP (the usual path)
//	bare       bench/bareproxy -cert -key: TLS straight to it, httputil.ReverseProxy, fixed token
//
// They are named so that the summary's authproxy/bare columns are the
// forward proxy over the TLS baseline; the forward/reverse ratios are
// printed with the scenario.
func init() {
	scenarios = append(scenarios,
		scenario{name: "forward", what: "GET, 256 B answer, 64 kept-alive HTTPS tunnels", method: "GET", path: "/size/256", conns: 64, lifetime: 3600,
			run: func(ctx context.Context, o options, ps *proxies, sc scenario) (scenarioReport, error) {
				return runForward(ctx, o, ps, sc, false)
			}},
		scenario{name: "forwardNew", what: "GET, 256 B answer, a new CONNECT and TLS handshake per request (leaf cached), 16 at a time", method: "GET", path: "/size/256", conns: 16, lifetime: 3600,
			run: func(ctx context.Context, o options, ps *proxies, sc scenario) (scenarioReport, error) {
				return runForward(ctx, o, ps, sc, true)
			}},
	)
}

// benchHost is the name the apps call the upstream by; nothing resolves
// it: the forward proxy maps it to the upstream's target on loopback, and
// the TLS baseline is dialled by address with it as the TLS name.
const benchHost = "api.bench.test"

// forwardPKI is the forward proxy's CA, a leaf of it for the TLS
// baseline (the same key type and issuer as the tunnels' leaves), and a
// client config that trusts the CA and does a full handshake each time.
type forwardPKI struct {
	caCert, caKey, leafCert, leafKey string
	client                           *tls.Config
}

func newForwardPKI(dir string) (*forwardPKI, error) {
	certPath, keyPath, err := pki.WriteCA(filepath.Join(dir, "ca"), []string{benchHost}, time.Now())
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	minter, err := pki.NewMinter(ca, nil, 0)
	if err != nil {
		return nil, err
	}
	leaf, err := minter.Certificate(benchHost)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		return nil, err
	}
	f := &forwardPKI{caCert: certPath, caKey: keyPath, leafCert: filepath.Join(dir, "leaf.pem"), leafKey: filepath.Join(dir, "leaf-key.pem")}
	if err := firstErr(
		os.WriteFile(f.leafCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), 0o644),
		os.WriteFile(f.leafKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	f.client = &tls.Config{RootCAs: roots, ServerName: benchHost, NextProtos: []string{"http/1.1"}}
	return f, nil
}

// runForward measures the three processes once a round each, rotating
// which goes first, as runScenario does.
func runForward(ctx context.Context, o options, ps *proxies, sc scenario, fresh bool) (rep scenarioReport, err error) {
	rep.sc = sc
	dir, err := ps.subdir("forward")
	if err != nil {
		return rep, err
	}
	keys, err := newForwardPKI(dir)
	if err != nil {
		return rep, err
	}
	up, err := startUpstream(sc.lifetime)
	if err != nil {
		return rep, err
	}
	defer up.close()
	var procs []*proxyProc
	var gens []*dialGen
	defer func() {
		for _, g := range gens {
			g.close()
		}
		for _, p := range procs {
			p.stop()
		}
	}()

	fwd, err := ps.runAuthproxy(ctx, up, "authproxy", ps.authproxy, false, keys)
	if err != nil {
		return rep, err
	}
	procs, gens = append(procs, fwd), append(gens, newDialGen(dialTunnel(fwd.addr, benchHost, keys.client), benchHost, sc, fresh))
	rev, err := ps.startAuthproxy(ctx, up)
	if err != nil {
		return rep, err
	}
	rev.name = "reverse"
	procs, gens = append(procs, rev), append(gens, newDialGen(dialTCP(rev.addr), rev.addr, sc, fresh))
	bare, err := ps.runBare(ctx, up, keys)
	if err != nil {
		return rep, err
	}
	bareGen := newDialGen(dialTLS(bare.addr, keys.client), benchHost, sc, fresh)
	procs, gens = append(procs, bare), append(gens, bareGen)
	if err := bareGen.waitServing(bare); err != nil {
		return rep, err
	}
	scrape := &http.Client{Timeout: 10 * time.Second}
	defer scrape.CloseIdleConnections()

	fmt.Fprintf(o.out, "\n## %s: %s %s, %d connections%s; authproxy = its forward proxy (CONNECT %s:443, TLS inside), reverse = its reverse listener (plain HTTP), bare = bench/bareproxy (TLS, fixed token)\n",
		sc.name, sc.method, sc.path, sc.conns, map[bool]string{true: ", a new connection (and for TLS a full handshake) per request", false: " kept alive"}[fresh], benchHost)
	rows, err := measureRounds(ctx, o, procs, generators(gens), scrape, "", func(byName map[string]measurement) {
		f, rv, b := byName["authproxy"], byName["reverse"], byName["bare"]
		fmt.Fprintf(o.out, "      forward/reverse: throughput %.3f, CPU/req %.3f; forward/tls-bare: throughput %.3f, CPU/req %.3f\n",
			f.rps/rv.rps, float64(f.cpuPerReq)/float64(rv.cpuPerReq), f.rps/b.rps, float64(f.cpuPerReq)/float64(b.cpuPerReq))
	})
	rep.rows = rows
	if err != nil {
		return rep, err
	}
	printForwardMedians(o.out, rep)
	return rep, nil
}

// printForwardMedians gives the medians over rounds of the per-round
// ratios, the figures the issue asks for.
func printForwardMedians(out io.Writer, rep scenarioReport) {
	rounds := map[int]map[string]measurement{}
	for _, m := range rep.rows {
		if rounds[m.round] == nil {
			rounds[m.round] = map[string]measurement{}
		}
		rounds[m.round][m.proxy] = m
	}
	var rs []map[string]measurement
	for _, r := range rounds {
		rs = append(rs, r)
	}
	ratio := func(a, b string, f func(measurement) float64) float64 {
		return median(rs, func(r map[string]measurement) float64 { return f(r[a]) / f(r[b]) })
	}
	rps := func(m measurement) float64 { return m.rps }
	cpu := func(m measurement) float64 { return float64(m.cpuPerReq) }
	fmt.Fprintf(out, "      medians over %d rounds: forward/reverse throughput %.3f, CPU/req %.3f; forward/tls-bare throughput %.3f, CPU/req %.3f; reverse/tls-bare throughput %.3f, CPU/req %.3f\n",
		len(rs), ratio("authproxy", "reverse", rps), ratio("authproxy", "reverse", cpu), ratio("authproxy", "bare", rps), ratio("authproxy", "bare", cpu),
		ratio("reverse", "bare", rps), ratio("reverse", "bare", cpu))
}
