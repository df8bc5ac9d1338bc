package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// summary is a scenario's medians over rounds.
type summary struct {
	perProxy map[string]measurement // medians of each figure; peakRSS is the highest
	ratios   map[string]ratios      // by authproxy build: medians of the per-round ratios
}

func summarize(rep scenarioReport) summary {
	byRound := map[int]map[string]measurement{}
	byProxy := map[string][]measurement{}
	for _, m := range rep.rows {
		if byRound[m.round] == nil {
			byRound[m.round] = map[string]measurement{}
		}
		byRound[m.round][m.proxy] = m
		byProxy[m.proxy] = append(byProxy[m.proxy], m)
	}
	s := summary{perProxy: map[string]measurement{}, ratios: map[string]ratios{}}
	for _, name := range measuredAuthproxies {
		if _, ok := byProxy[name]; !ok {
			continue
		}
		var rs []ratios
		for _, round := range byRound {
			rs = append(rs, roundRatios(round, name))
		}
		s.ratios[name] = ratios{
			rps:      median(rs, func(r ratios) float64 { return r.rps }),
			p99:      median(rs, func(r ratios) float64 { return r.p99 }),
			cpu:      median(rs, func(r ratios) float64 { return r.cpu }),
			allocs:   median(rs, func(r ratios) float64 { return r.allocs }),
			rpsNginx: median(rs, func(r ratios) float64 { return r.rpsNginx }),
			cpuNginx: median(rs, func(r ratios) float64 { return r.cpuNginx }),
		}
	}
	for name, ms := range byProxy {
		m := measurement{proxy: name,
			rps:          median(ms, func(m measurement) float64 { return m.rps }),
			p99:          time.Duration(median(ms, func(m measurement) float64 { return float64(m.p99) })),
			cpuPerReq:    time.Duration(median(ms, func(m measurement) float64 { return float64(m.cpuPerReq) })),
			allocsPerReq: median(ms, func(m measurement) float64 { return m.allocsPerReq }),
			bytesPerReq:  median(ms, func(m measurement) float64 { return m.bytesPerReq }),
		}
		for _, x := range ms {
			m.peakRSS = max(m.peakRSS, x.peakRSS)
			m.errors += x.errors
		}
		s.perProxy[name] = m
	}
	return s
}

// median of f over v (the upper middle of an even count); NaN if any
// value is NaN (nginx absent, or no allocation figure).
func median[T any](v []T, f func(T) float64) float64 {
	xs := make([]float64, len(v))
	for i, x := range v {
		xs[i] = f(x)
		if math.IsNaN(xs[i]) {
			return math.NaN()
		}
	}
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// printSummary writes the two tables a reader compares runs with:
// the ratios the targets are stated in, and each proxy's own
// figures.
func printSummary(out io.Writer, reports []scenarioReport, withNginx, withBefore bool) {
	sums := make([]summary, len(reports))
	for i, rep := range reports {
		sums[i] = summarize(rep)
	}
	ratioTable := func(title, proxy string) {
		fmt.Fprintln(out, title)
		fmt.Fprintln(out, "| scenario | throughput | p99 | CPU/req | allocs/req | throughput vs nginx | CPU/req vs nginx |")
		fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
		for i, rep := range reports {
			r := sums[i].ratios[proxy]
			fmt.Fprintf(out, "| %s | %.3f | %.3f | %.3f | %+.1f | %s | %s |\n", rep.sc.name, r.rps, r.p99, r.cpu, r.allocs,
				ratioString(r.rpsNginx), ratioString(r.cpuNginx))
		}
	}
	ratioTable("\n# medians over rounds of authproxy/bare+pool (allocs: authproxy minus bare) and authproxy/nginx", "authproxy")
	if withBefore {
		ratioTable("\n# the same for the -before build, measured in the same rounds", "before")
	}
	fmt.Fprintln(out, "\n# medians over rounds per proxy process (peak RSS: the highest of the rounds)")
	fmt.Fprintln(out, "| scenario | proxy | req/s | p99 | CPU/req | allocs/req | bytes/req | peak RSS | errors |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|")
	for i, rep := range reports {
		for _, name := range []string{"authproxy", "before", "reverse", "bare", "nginx"} {
			m, ok := sums[i].perProxy[name]
			if !ok {
				continue
			}
			fmt.Fprintf(out, "| %s | %s | %.0f | %s | %.1f µs | %s | %s | %d MiB | %d |\n", rep.sc.name, name, m.rps,
				m.p99.Round(10*time.Microsecond), micros(m.cpuPerReq), allocsString(m.allocsPerReq), bytesString(m.bytesPerReq), m.peakRSS>>20, m.errors)
		}
	}
	if !withNginx {
		fmt.Fprintln(out, "\nnginx was not measured: install it (apt-get install nginx-light) or give -nginx PATH")
	}
}

func bytesString(b float64) string {
	if math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f KB", b/1000)
}

func ratioString(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", r)
}
