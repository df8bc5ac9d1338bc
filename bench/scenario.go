package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// measurement is one proxy's figures over one measured interval.
type measurement struct {
	proxy        string
	round        int
	requests     int64
	errors       int64
	rps          float64
	p50, p99     time.Duration
	cpuPerReq    time.Duration // the proxy process's CPU time / requests
	allocsPerReq float64       // heap objects / request; NaN for nginx
	bytesPerReq  float64       // heap bytes allocated / request; NaN for nginx
	peakRSS      int64         // bytes; the interval's peak
}

// scenarioReport is a scenario's measurements, every round and proxy.
type scenarioReport struct {
	sc          scenario
	rows        []measurement
	tokenGrants int64 // token endpoint answers during the rounds (authproxy's refreshes)
}

// runScenario starts a fresh upstream and fresh proxies, so that each
// scenario's peak RSS is its own, and measures every proxy once a round,
// rotating which goes first.
func runScenario(ctx context.Context, o options, ps *proxies, sc scenario) (rep scenarioReport, err error) {
	rep.sc = sc
	up, err := startUpstream(sc.lifetime)
	if err != nil {
		return rep, err
	}
	up.dpop = sc.dpop
	defer up.close()
	var procs []*proxyProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	starts := []func(context.Context, *upstream) (*proxyProc, error){ps.startAuthproxy, ps.startBare}
	if ps.before != "" && sc.dpop == "" {
		starts = append(starts, ps.startBefore)
	}
	if o.traced {
		starts = append(starts, ps.startTraced)
	}
	if ps.nginx != "" {
		starts = append(starts, ps.startNginx)
	}
	for _, start := range starts {
		p, err := start(ctx, up)
		if err != nil {
			return rep, err
		}
		procs = append(procs, p)
	}
	gens := make([]*loadGen, len(procs))
	for i, p := range procs {
		gens[i] = newLoadGen(p.addr, sc)
		defer gens[i].close()
	}
	scrape := &http.Client{Timeout: 10 * time.Second}
	defer scrape.CloseIdleConnections()

	fmt.Fprintf(o.out, "\n## %s: %s %s, body %d B, %d connections, token lifetime %d s\n", sc.name, sc.method, sc.path, sc.body, sc.conns, sc.lifetime)
	grantsBefore := up.tokenGrants.Load()
	profileDir := ""
	if o.profileDir != "" {
		profileDir = filepath.Join(o.profileDir, sc.name)
	}
	rows, err := measureRounds(ctx, o, procs, generators(gens), scrape, profileDir, func(byName map[string]measurement) {
		for _, name := range measuredAuthproxies {
			if _, ok := byName[name]; !ok {
				continue
			}
			rr := roundRatios(byName, name)
			fmt.Fprintf(o.out, "      %s/bare: throughput %.3f, p99 %.3f, CPU/req %.3f, allocs/req %+.1f", name, rr.rps, rr.p99, rr.cpu, rr.allocs)
			if _, ok := byName["nginx"]; ok {
				fmt.Fprintf(o.out, "; %s/nginx: throughput %.3f, CPU/req %.3f", name, rr.rpsNginx, rr.cpuNginx)
			}
			fmt.Fprintln(o.out)
		}
	})
	rep.rows = rows
	if err != nil {
		return rep, err
	}
	rep.tokenGrants = up.tokenGrants.Load() - grantsBefore
	fmt.Fprintf(o.out, "      token endpoint answered %d times during the rounds\n", rep.tokenGrants)
	return rep, nil
}

// measureRounds measures each of procs, with its generator, once a round
// for o.rounds rounds, in an order that rotates by round so that none is
// always first; each row is printed as it comes, and after each round
// summary is given the round's rows by proxy name. With profileDir set,
// the first round profiles the procs that serve pprof into it.
func measureRounds(ctx context.Context, o options, procs []*proxyProc, gens []generator, scrape *http.Client, profileDir string, summary func(byName map[string]measurement)) ([]measurement, error) {
	fmt.Fprintf(o.out, "%-5s %-9s %9s %9s %9s %11s %10s %9s %8s %7s\n", "round", "proxy", "req/s", "p50", "p99", "CPU/req", "allocs/req", "bytes/req", "peak RSS", "errors")
	var rows []measurement
	for r := range o.rounds {
		byName := map[string]measurement{}
		for i := range procs {
			k := (i + r) % len(procs)
			if err := ctx.Err(); err != nil {
				return rows, err
			}
			profileTo := ""
			if profileDir != "" && r == 0 && procs[k].pprof != "" {
				profileTo = profileDir
			}
			m, err := measure(procs[k], gens[k], o, scrape, profileTo)
			if err != nil {
				return rows, fmt.Errorf("%s, round %d: %w", procs[k].name, r+1, err)
			}
			m.round = r + 1
			rows = append(rows, m)
			byName[m.proxy] = m
			fmt.Fprintf(o.out, "%-5d %-9s %9.0f %9s %9s %9.1fµs %10s %9s %7dM %7d\n", m.round, m.proxy, m.rps,
				m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond), micros(m.cpuPerReq), allocsString(m.allocsPerReq),
				bytesString(m.bytesPerReq), m.peakRSS>>20, m.errors)
		}
		summary(byName)
	}
	return rows, nil
}

// generators is gens as the generator each is.
func generators[G generator](gens []G) []generator {
	out := make([]generator, len(gens))
	for i, g := range gens {
		out[i] = g
	}
	return out
}

// measure warms p's connections up, then reads the proxy process's CPU,
// allocations and peak RSS around one measured interval of load.
func measure(p *proxyProc, g generator, o options, scrape *http.Client, profileTo string) (measurement, error) {
	m := measurement{proxy: p.name, allocsPerReq: math.NaN(), bytesPerReq: math.NaN()}
	if o.warmup > 0 {
		g.run(o.warmup)
	}
	// Reading the counter allocates in the proxy too (the scrape is
	// served there). Two reads in a row give what one costs, which is
	// taken off the interval's count, which holds one read's cost too.
	var heapBefore, scrapeCost heapCounters
	if p.metrics != "" {
		first, err := readHeapCounters(scrape, p.metrics)
		if err != nil {
			return m, err
		}
		if heapBefore, err = readHeapCounters(scrape, p.metrics); err != nil {
			return m, err
		}
		scrapeCost = heapBefore.minus(first)
	}
	var profiles *profileFetch
	if profileTo != "" {
		profiles = startProfiles(p.pprof, o.duration)
	}
	resetPeakRSS(p.pids)
	cpuBefore, err := cpuTime(p.pids)
	if err != nil {
		return m, err
	}
	res := g.run(o.duration)
	cpuAfter, err := cpuTime(p.pids)
	if err != nil {
		return m, err
	}
	m.peakRSS = peakRSS(p.pids)
	m.requests, m.errors = res.requests, res.errors
	if res.requests == 0 {
		return m, fmt.Errorf("no request answered 200 (%d errors)", res.errors)
	}
	n := float64(res.requests)
	m.rps = n / res.elapsed.Seconds()
	m.p50, m.p99 = percentile(res.latency, 50), percentile(res.latency, 99)
	m.cpuPerReq = (cpuAfter - cpuBefore) / time.Duration(res.requests)
	if p.metrics != "" {
		after, err := readHeapCounters(scrape, p.metrics)
		if err != nil {
			return m, err
		}
		d := after.minus(heapBefore).minus(scrapeCost)
		m.allocsPerReq, m.bytesPerReq = d.objects/n, d.bytes/n
	}
	if profiles != nil {
		if err := profiles.save(profileTo, res.requests); err != nil {
			return m, err
		}
		fmt.Fprintf(o.out, "      profiles of authproxy over %d requests: %s-cpu.pprof, %s-allocs.pprof\n", res.requests, profileTo, profileTo)
	}
	return m, nil
}

// measuredAuthproxies are the builds of authproxy a run may measure:
// this one, and the -before one.
var measuredAuthproxies = []string{"authproxy", "before"}

// ratios of one round, an authproxy build over the others.
type ratios struct {
	rps, p99, cpu, allocs float64 // against bare; allocs is a difference
	rpsNginx, cpuNginx    float64
}

// roundRatios are the ratios of the authproxy build name in one round.
func roundRatios(byName map[string]measurement, name string) ratios {
	ap, bare := byName[name], byName["bare"]
	r := ratios{
		rps: ap.rps / bare.rps, p99: float64(ap.p99) / float64(bare.p99),
		cpu: float64(ap.cpuPerReq) / float64(bare.cpuPerReq), allocs: ap.allocsPerReq - bare.allocsPerReq,
		rpsNginx: math.NaN(), cpuNginx: math.NaN(),
	}
	if ng, ok := byName["nginx"]; ok {
		r.rpsNginx = ap.rps / ng.rps
		r.cpuNginx = float64(ap.cpuPerReq) / float64(ng.cpuPerReq)
	}
	return r
}

// profileFetch is a CPU and an allocation profile being taken over one
// measured interval, through net/http/pprof's ?seconds= (a delta, for
// allocations).
type profileFetch struct {
	cpu, allocs chan fetched
}

type fetched struct {
	data []byte
	err  error
}

func startProfiles(base string, d time.Duration) *profileFetch {
	secs := max(1, int(math.Ceil(d.Seconds())))
	f := &profileFetch{cpu: make(chan fetched, 1), allocs: make(chan fetched, 1)}
	get := func(url string, to chan<- fetched) {
		resp, err := http.Get(url)
		if err != nil {
			to <- fetched{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s: %s", url, resp.Status, data)
		}
		to <- fetched{data, err}
	}
	go get(fmt.Sprintf("%s/profile?seconds=%d", base, secs), f.cpu)
	go get(fmt.Sprintf("%s/allocs?seconds=%d", base, secs), f.allocs)
	return f
}

// save waits for both profiles and writes them next to a note of the
// number of requests they cover.
func (f *profileFetch) save(prefix string, requests int64) error {
	cpu, allocs := <-f.cpu, <-f.allocs
	if err := firstErr(cpu.err, allocs.err); err != nil {
		return err
	}
	return firstErr(
		os.WriteFile(prefix+"-cpu.pprof", cpu.data, 0o644),
		os.WriteFile(prefix+"-allocs.pprof", allocs.data, 0o644),
		os.WriteFile(prefix+"-requests.txt", fmt.Appendf(nil, "%d\n", requests), 0o644))
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func allocsString(a float64) string {
	if math.IsNaN(a) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", a)
}
