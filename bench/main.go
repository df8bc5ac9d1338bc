// Command bench measures authproxy against a bare httputil.ReverseProxy
// that attaches a fixed token, side by side in one run on one machine:
//
//	go run ./bench                 # every scenario, 5 rounds of 3s each
//	go run ./bench -scenario small -rounds 3 -duration 2s
//
// Both proxies, a fast fake upstream and a fake token endpoint run in this
// process on loopback, and a Go load generator drives each proxy in turn,
// alternating which goes first each round. authproxy runs as the real
// program (app.Run) with its access log (JSON, encoded then discarded),
// metrics and token cache on. On a small machine the generator, the proxy
// and the upstream share the cores, so compare the ratio, not the
// absolute figures.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/app"
)

type scenario struct {
	name     string
	method   string
	path     string // on the upstream: /size/N answers N bytes
	body     int    // request body bytes
	conns    int
	lifetime int // token lifetime in seconds; small makes refreshes happen during the run
}

var scenarios = []scenario{
	{name: "small", method: "GET", path: "/size/256", conns: 64, lifetime: 3600},
	{name: "16KiB", method: "GET", path: "/size/16384", conns: 64, lifetime: 3600},
	{name: "post64KiB", method: "POST", path: "/size/256", body: 64 << 10, conns: 64, lifetime: 3600},
	{name: "conns1000", method: "GET", path: "/size/256", conns: 1000, lifetime: 3600},
	{name: "refresh", method: "GET", path: "/size/256", conns: 64, lifetime: 2},
}

func main() {
	duration := flag.Duration("duration", 3*time.Second, "length of one measurement")
	rounds := flag.Int("rounds", 5, "rounds per scenario (A, B alternating)")
	only := flag.String("scenario", "", "run only this scenario")
	flag.StringVar(&replayMaxBody, "replay-max-body", "1MiB", "authproxy's replay.max_body (0: bodies stream, no replay of requests with one)")
	flag.Parse()

	fmt.Printf("# authproxy vs bare httputil.ReverseProxy: %d cores, %s, %s/%s, %d rounds of %s\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, *rounds, *duration)
	var medians []string
	for _, sc := range scenarios {
		if *only != "" && sc.name != *only {
			continue
		}
		medians = append(medians, runScenario(sc, *rounds, *duration))
	}
	fmt.Println("\n# median ratio authproxy/bare per scenario (throughput, p99)")
	for _, m := range medians {
		fmt.Println(m)
	}
}

func runScenario(sc scenario, rounds int, d time.Duration) string {
	up := startUpstream(sc.lifetime)
	defer up.close()
	bare := startBare(up.url)
	defer bare.close()
	ap := startAuthproxy(up.url)
	defer ap.close()

	fmt.Printf("\n## %s: %s %s, body %d B, %d connections, token lifetime %ds\n", sc.name, sc.method, sc.path, sc.body, sc.conns, sc.lifetime)
	fmt.Printf("%-5s %-9s %10s %9s %9s %9s %11s %9s %10s\n", "round", "proxy", "req/s", "p50", "p99", "max", "allocs/req", "peak RSS", "errors")
	var rpsRatios, p99Ratios []float64
	for r := range rounds {
		order := []target{ap.target, bare.target}
		if r%2 == 1 {
			order = []target{bare.target, ap.target}
		}
		res := map[string]result{}
		for _, t := range order {
			res[t.name] = load(t, sc, d)
			x := res[t.name]
			fmt.Printf("%-5d %-9s %10.0f %9s %9s %9s %11.1f %8dM %10d\n", r+1, t.name, x.rps, x.p50, x.p99, x.max, x.allocs, x.peakRSS>>20, x.errors)
		}
		rr := res["authproxy"].rps / res["bare"].rps
		pr := float64(res["authproxy"].p99) / float64(res["bare"].p99)
		rpsRatios, p99Ratios = append(rpsRatios, rr), append(p99Ratios, pr)
		fmt.Printf("      ratio authproxy/bare: throughput %.3f, p99 %.3f\n", rr, pr)
	}
	return fmt.Sprintf("%-10s throughput %.3f  p99 %.3f", sc.name, median(rpsRatios), median(p99Ratios))
}

var replayMaxBody string

type target struct {
	name string
	url  string
}

type result struct {
	rps           float64
	p50, p99, max time.Duration
	allocs        float64
	peakRSS       int64
	errors        int64
}

// load runs sc against t for d and measures it. Allocations and RSS are
// the whole process's; they differ between the two proxies only by what
// the proxies themselves do.
func load(t target, sc scenario, d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: sc.conns, MaxConnsPerHost: sc.conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := bytes.Repeat([]byte("b"), sc.body)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stopRSS := make(chan struct{})
	peak := make(chan int64)
	go sampleRSS(stopRSS, peak)

	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, sc.conns)
	var errs atomic.Int64
	var wg sync.WaitGroup
	for w := range sc.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				var rd io.Reader
				if sc.body > 0 {
					rd = bytes.NewReader(body)
				}
				req, _ := http.NewRequest(sc.method, t.url+sc.path, rd)
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(start))
			}
			lat[w] = local
		}()
	}
	wg.Wait()
	close(stopRSS)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	all := slices.Concat(lat...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	if n == 0 {
		return result{errors: errs.Load()}
	}
	return result{
		rps: float64(n) / d.Seconds(),
		p50: all[n/2].Round(time.Microsecond), p99: all[n*99/100].Round(time.Microsecond), max: all[n-1].Round(time.Microsecond),
		allocs:  float64(after.Mallocs-before.Mallocs) / float64(n),
		peakRSS: <-peak,
		errors:  errs.Load(),
	}
}

// sampleRSS reports the highest resident set size seen until stop.
func sampleRSS(stop <-chan struct{}, peak chan<- int64) {
	var max int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if rss := readRSS(); rss > max {
			max = rss
		}
		select {
		case <-stop:
			peak <- max
			return
		case <-tick.C:
		}
	}
}

func readRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// server is something the harness started and must stop.
type server struct {
	target
	close func()
}

// startUpstream serves /token (lifetime-second tokens) and /size/N.
func startUpstream(lifetime int) server {
	payload := bytes.Repeat([]byte("x"), 1<<20)
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"bench-%d","token_type":"Bearer","expires_in":%d}`, n.Add(1), lifetime)
	})
	mux.HandleFunc("/size/{n}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(401)
			return
		}
		io.Copy(io.Discard, r.Body)
		size, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(payload[:min(size, len(payload))])
	})
	return serve("upstream", mux)
}

// startBare is the baseline: the least a Go proxy attaching a token does.
func startBare(upstream string) server {
	target, _ := url.Parse(upstream)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer fixed-token")
		},
		Transport: tr,
	}
	return serve("bare", rp)
}

func serve(name string, h http.Handler) server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return server{target{name, "http://" + ln.Addr().String()}, func() { srv.Close() }}
}

// startAuthproxy runs the real program with everything on.
func startAuthproxy(upstream string) server {
	dir, err := os.MkdirTemp("", "authproxy-bench")
	if err != nil {
		panic(err)
	}
	config := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: info, format: json}
store: {type: memory}
limits: {max_request_body: 1MiB}
upstreams:
  api:
    target: %s
    path_prefix: ""
    token: {url: "%s/token", client_id: bench, client_secret: bench-secret, refresh_before: 10m, min_lifetime: 1s}
    replay: {max_body: "%s"}
`, upstream, upstream, replayMaxBody)
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte(config), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Args: []string{"--config", path}, Stdout: io.Discard, Stderr: io.Discard,
			Ready: func(a string) { ready <- a }})
	}()
	select {
	case addr := <-ready:
		return server{target{"authproxy", "http://" + addr}, func() { cancel(); <-done; os.RemoveAll(dir) }}
	case code := <-done:
		panic(fmt.Sprintf("authproxy exited with %d", code))
	}
}
