package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The -memory mode: what each proxy holds in memory for idle keep-alive
// connections (1,000 and 10,000, each having made one request), and at
// its peak under load on 1,000 connections, with the CPU per request that
// peak was bought with. authproxy runs once per GC setting of
// -gc-variants, so that the trade-off of GOGC and GOMEMLIMIT is measured
// in the same run as the baselines.

// idleSteps are the numbers of idle connections RSS is read at.
var idleSteps = []int{1000, 10000}

// memoryRow is one proxy (or one GC setting of authproxy) in -memory.
type memoryRow struct {
	name   string
	start  int64   // RSS after start and one request, bytes
	idle   []int64 // RSS with idleSteps[i] idle connections
	loaded measurement
}

// gcVariant is a GC setting authproxy is run with: "default" (what
// app/gc.go decides), or environment settings such as "GOGC=100" or
// "GOGC=off GOMEMLIMIT=48MiB".
type gcVariant struct {
	label string
	env   []string
}

func parseGCVariants(list string) []gcVariant {
	var vs []gcVariant
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		g := gcVariant{label: "authproxy " + v}
		if v == "default" {
			g.label = "authproxy"
		} else {
			g.env = strings.Fields(v)
		}
		vs = append(vs, g)
	}
	return vs
}

// runMemory measures each proxy in turn, alone on the machine's loopback
// (10,000 connections to each of several proxies at once would run out
// of ephemeral ports).
func runMemory(ctx context.Context, o options, ps *proxies, variants []gcVariant) ([]memoryRow, error) {
	up, err := startUpstream(3600)
	if err != nil {
		return nil, err
	}
	defer up.close()
	type candidate struct {
		label string
		start func() (*proxyProc, error)
	}
	var cands []candidate
	for _, v := range variants {
		cands = append(cands, candidate{v.label, func() (*proxyProc, error) {
			ps.authproxyEnv = v.env
			defer func() { ps.authproxyEnv = nil }()
			return ps.startAuthproxy(ctx, up)
		}})
	}
	cands = append(cands, candidate{"bare+pool", func() (*proxyProc, error) { return ps.startBare(ctx, up) }})
	if ps.nginx != "" {
		cands = append(cands, candidate{"nginx", func() (*proxyProc, error) { return ps.startNginx(ctx, up) }})
	}
	loaded := scenario{name: "loaded", method: "GET", path: "/size/256", conns: 1000, lifetime: 3600}
	scrape := &http.Client{Timeout: 10 * time.Second}
	defer scrape.CloseIdleConnections()
	fmt.Fprintf(o.out, "\n## memory: RSS with idle keep-alive connections (%v), and peak RSS under load on 1,000 connections (%d rounds of %s on one process, warm-up %s each; CPU/req the median, peak the highest)\n", idleSteps, o.rounds, o.duration, o.warmup)
	var rows []memoryRow
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		row := memoryRow{name: c.label}
		p, err := c.start()
		if err != nil {
			return rows, err
		}
		row.start = currentRSS(p.pids)
		g := newLoadGen(p.addr, scenario{method: "GET", path: "/size/256"})
		opened := 0
		for _, n := range idleSteps {
			g.conns = append(g.conns, make([]clientConn, n-opened)...)
			if errs := openIdle(g, opened); errs > 0 {
				g.close()
				p.stop()
				return rows, fmt.Errorf("%s: %d of %d connections failed their request", c.label, errs, n-opened)
			}
			opened = n
			time.Sleep(time.Second) // let the proxy's goroutines settle
			row.idle = append(row.idle, currentRSS(p.pids))
		}
		g.close()
		p.stop()

		// A fresh process for the load, so that its peak is the load's and
		// not the idle connections'.
		if p, err = c.start(); err != nil {
			return rows, err
		}
		lg := newLoadGen(p.addr, loaded)
		var ms []measurement
		for range o.rounds {
			m, err := measure(p, lg, o, scrape, "")
			if err != nil {
				lg.close()
				p.stop()
				return rows, fmt.Errorf("%s, loaded: %w", c.label, err)
			}
			ms = append(ms, m)
		}
		lg.close()
		p.stop()
		row.loaded = loadedSummary(ms)
		m := row.loaded
		rows = append(rows, row)
		fmt.Fprintf(o.out, "%-28s start %4d MiB; idle %s; loaded 1,000: peak %d MiB, %.1f µs CPU/req, %.0f req/s, p99 %s, %d errors\n",
			row.name, row.start>>20, idleString(row), m.peakRSS>>20, micros(m.cpuPerReq), m.rps, m.p99.Round(100*time.Microsecond), m.errors)
	}
	printMemory(o.out, rows)
	return rows, nil
}

func idleString(r memoryRow) string {
	var parts []string
	for i, n := range idleSteps {
		parts = append(parts, fmt.Sprintf("%d: %d MiB (%.1f KiB/conn)", n, r.idle[i]>>20, perConn(r, i)))
	}
	return strings.Join(parts, ", ")
}

// perConn is the RSS each idle connection added, in KiB, over the RSS
// at start.
func perConn(r memoryRow, i int) float64 {
	return float64(r.idle[i]-r.start) / float64(idleSteps[i]) / 1024
}

func printMemory(out interface{ Write([]byte) (int, error) }, rows []memoryRow) {
	fmt.Fprintln(out, "\n| proxy | RSS at start | 1,000 idle | 10,000 idle | per idle conn (10,000) | loaded 1,000: peak RSS | CPU/req | req/s |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %d MiB | %d MiB | %d MiB | %.1f KiB | %d MiB | %.1f µs | %.0f |\n", r.name, r.start>>20,
			r.idle[0]>>20, r.idle[1]>>20, perConn(r, 1), r.loaded.peakRSS>>20, micros(r.loaded.cpuPerReq), r.loaded.rps)
	}
}

// openIdle makes one request on each of g's connections from index
// `from` on, 100 at a time, and leaves them open; it returns how many
// failed.
func openIdle(g *loadGen, from int) int {
	var mu sync.Mutex
	failed := 0
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for i := from; i < len(g.conns); i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(cc *clientConn) {
			defer func() { <-sem; wg.Done() }()
			if err := cc.roundTrip(g.addr, g.req); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			cc.c.SetDeadline(time.Time{}) // idle for as long as the test wants
		}(&g.conns[i])
	}
	wg.Wait()
	return failed
}

// currentRSS sums VmRSS over the processes.
func currentRSS(pids []int) int64 { return sumStatus(pids, "VmRSS:") }

// loadedSummary is the medians over rounds of one process under load,
// with the highest peak RSS.
func loadedSummary(ms []measurement) measurement {
	m := measurement{proxy: ms[0].proxy,
		rps:       median(ms, func(m measurement) float64 { return m.rps }),
		p99:       time.Duration(median(ms, func(m measurement) float64 { return float64(m.p99) })),
		cpuPerReq: time.Duration(median(ms, func(m measurement) float64 { return float64(m.cpuPerReq) })),
	}
	for _, x := range ms {
		m.peakRSS = max(m.peakRSS, x.peakRSS)
		m.errors += x.errors
	}
	return m
}
