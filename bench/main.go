// Command bench measures authproxy against an honest baseline and against
// nginx, side by side in one run on one machine:
//
//	go run ./bench                               # every scenario, 5 rounds of 3 s
//	go run ./bench -scenario small,post64KiB -rounds 3 -duration 2s
//	go run ./bench -quick                        # one short round of each (CI smoke)
//	go run ./bench -scenario small -profile /tmp/prof
//	go run ./bench -before /tmp/authproxy-main    # an older build side by side
//	go run ./bench -far                          # latency to a far API (root: a netns behind tc netem)
//	go run ./bench -memory                       # RSS with idle and loaded connections
//
// Each proxy runs as a process of its own: authproxy as the built binary
// with a config file, the baseline as bench/bareproxy (a bare
// httputil.ReverseProxy with authproxy's buffer pool and transport
// settings and a fixed token), and nginx where it is installed. The fake
// upstream, the token endpoint and the load generator run in this
// process. For each proxy the bench reads, over the measured interval
// only, the proxy process's CPU time (/proc/PID/stat), its heap
// allocations (go_memstats_mallocs_total and _alloc_bytes_total from its /metrics; Go proxies
// only) and its peak RSS, and from the generator the throughput and the
// latency. Rounds alternate which proxy goes first; the summary gives the
// medians over rounds of the ratios.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

type scenario struct {
	name     string
	what     string
	method   string
	path     string // on the upstream: /size/N answers N bytes
	body     int    // request body bytes
	conns    int
	lifetime int // token lifetime in seconds; small makes refreshes happen during the run
	// dpop, if set, binds authproxy's tokens to a key of this algorithm
	// (ES256, EdDSA): a DPoP proof signed for every request.
	// The "before" binary is left out of such a scenario.
	dpop string
	// run, if set, measures the scenario instead of runScenario (other
	// proxies, other load: see forward.go).
	run func(context.Context, options, *proxies, scenario) (scenarioReport, error)
}

var scenarios = []scenario{
	{name: "small", what: "GET, 256 B answer, 64 connections", method: "GET", path: "/size/256", conns: 64, lifetime: 3600},
	{name: "16KiB", what: "GET, 16 KiB answer, 64 connections", method: "GET", path: "/size/16384", conns: 64, lifetime: 3600},
	{name: "post64KiB", what: "POST, 64 KiB body (kept for replay), 256 B answer", method: "POST", path: "/size/256", body: 64 << 10, conns: 64, lifetime: 3600},
	{name: "conns1000", what: "GET, 256 B answer, 1000 connections", method: "GET", path: "/size/256", conns: 1000, lifetime: 3600},
	{name: "refresh", what: "GET, 256 B, token lifetime 2 s (refreshed about every second)", method: "GET", path: "/size/256", conns: 64, lifetime: 2},
	// small with DPoP: compare authproxy's CPU/req and allocs/req with small's.
	{name: "small-dpop-es256", what: "small, with a DPoP proof (ES256, P-256) signed for every request", method: "GET", path: "/size/256", conns: 64, lifetime: 3600, dpop: "ES256"},
	{name: "small-dpop-ed25519", what: "small, with a DPoP proof (EdDSA, Ed25519) signed for every request", method: "GET", path: "/size/256", conns: 64, lifetime: 3600, dpop: "EdDSA"},
}

// options are the command line's, made plain for run.
type options struct {
	scenarios     []scenario
	rounds        int
	duration      time.Duration // one measured interval
	warmup        time.Duration // unmeasured load before each measured interval
	nginx         string        // nginx binary; "" leaves nginx out
	authproxy     string        // prebuilt binary; "" builds one
	before        string        // another authproxy build measured side by side as "before"; "": none
	profileDir    string        // "": no profiles
	replayMaxBody string
	gcVariants    []gcVariant // -memory: authproxy's GC settings to measure; nil: no memory measurement
	traced        bool        // also authproxy with tracing on, as "traced" (tracing.go)
	out           io.Writer
}

func main() {
	var o options
	only := flag.String("scenario", "", "comma-separated scenarios to run (default all): "+scenarioNames())
	flag.IntVar(&o.rounds, "rounds", 5, "rounds per scenario; each round measures every proxy once, in a rotating order")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of one measured interval")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured load on the same connections before each measured interval")
	quick := flag.Bool("quick", false, "one round of 300 ms per scenario, 100 ms warm-up: a smoke run for CI, not a measurement")
	nginx := flag.String("nginx", "", `nginx binary; default: nginx on the PATH or /usr/sbin/nginx if there; "off": leave nginx out`)
	flag.StringVar(&o.authproxy, "authproxy", "", "authproxy binary to measure (default: build this checkout's)")
	flag.StringVar(&o.before, "before", "", `another authproxy binary (an older build) to measure side by side with the same config, reported as "before"`)
	flag.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles of authproxy's first measured interval of each scenario into this directory (runs bench/profiled, which serves net/http/pprof)")
	flag.StringVar(&o.replayMaxBody, "replay-max-body", "1MiB", "authproxy's replay.max_body (0: bodies stream, no replay of requests with one)")
	far := flag.Bool("far", false, "instead of the scenarios: latency to a far HTTPS API behind an emulated round trip, direct and through authproxy (needs root for ip netns and tc; skips without)")
	fo := farOptions{}
	flag.DurationVar(&fo.rtt, "far-rtt", 20*time.Millisecond, "-far: the emulated round trip to the API")
	flag.IntVar(&fo.clients, "far-clients", 8, "-far: concurrent callers")
	memory := flag.Bool("memory", false, "instead of the scenarios: RSS with 1,000 and 10,000 idle keep-alive connections and peak RSS under load on 1,000, per proxy")
	gcVariants := flag.String("gc-variants", "default,GOGC=100,GOGC=200", `-memory: authproxy's GC settings to run it with, comma-separated: "default" (app/gc.go's) or space-separated environment settings`)
	flag.BoolVar(&o.traced, "traced", false, `also measure authproxy with tracing on, every trace sampled, as "traced"; the closing note gives on/off`)
	flag.Parse()
	if *quick {
		o.rounds, o.duration, o.warmup = 1, 300*time.Millisecond, 100*time.Millisecond
	}
	var err error
	if o.scenarios, err = pickScenarios(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *memory {
		o.scenarios, o.gcVariants = nil, parseGCVariants(*gcVariants)
	}
	o.nginx = findNginx(*nginx)
	if o.profileDir != "" && o.authproxy != "" {
		fmt.Fprintln(os.Stderr, "bench: -profile builds its own authproxy (bench/profiled); leave out -authproxy")
		os.Exit(2)
	}
	o.out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *far {
		if err := runFar(ctx, o, fo); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -far:", err)
			os.Exit(1)
		}
		return
	}
	if _, err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func scenarioNames() string {
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = sc.name
	}
	return strings.Join(names, ",")
}

func pickScenarios(list string) ([]scenario, error) {
	if list == "" {
		return scenarios, nil
	}
	var picked []scenario
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.name == name })
		if i < 0 {
			return nil, fmt.Errorf("no scenario %q; there are %s", name, scenarioNames())
		}
		picked = append(picked, scenarios[i])
	}
	return picked, nil
}

// findNginx resolves the -nginx flag to a binary, or "" for none.
func findNginx(flagValue string) string {
	switch flagValue {
	case "off":
		return ""
	case "":
		if p, err := exec.LookPath("nginx"); err == nil {
			return p
		}
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx"
		}
		return ""
	}
	return flagValue
}

// run builds the Go proxies and measures every scenario of o.
func run(ctx context.Context, o options) ([]scenarioReport, error) {
	dir, err := os.MkdirTemp("", "authproxy-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // nginx's workers may run as nobody
		return nil, err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	ps := &proxies{dir: dir, authproxy: o.authproxy, before: o.before, nginx: o.nginx, profile: o.profileDir != "",
		replayMaxBody: o.replayMaxBody, devNull: devNull}
	if ps.profile {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
		if ps.authproxy, err = goBuild(dir, "github.com/authproxy/authproxy/bench/profiled", "authproxy"); err != nil {
			return nil, err
		}
	} else if ps.authproxy == "" {
		if ps.authproxy, err = goBuild(dir, "github.com/authproxy/authproxy", "authproxy"); err != nil {
			return nil, err
		}
	}
	if ps.bare, err = goBuild(dir, "github.com/authproxy/authproxy/bench/bareproxy", "bareproxy"); err != nil {
		return nil, err
	}

	nginxDesc := "nginx: not installed (apt-get install nginx-light)"
	if o.nginx != "" {
		nginxDesc = nginxVersion(o.nginx) + fmt.Sprintf(" (%d workers)", nginxWorkers)
	}
	fmt.Fprintf(o.out, "# authproxy vs bare+pool vs nginx: %d cores, %s, %s/%s, %s; %d rounds of %s (warm-up %s)\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, nginxDesc, o.rounds, o.duration, o.warmup)
	fmt.Fprintf(o.out, "# GOGC=%q GOMAXPROCS=%q GOMEMLIMIT=%q; load average at start: %s\n",
		os.Getenv("GOGC"), os.Getenv("GOMAXPROCS"), os.Getenv("GOMEMLIMIT"), loadAverage())
	if ps.profile {
		fmt.Fprintf(o.out, "# profile mode: authproxy is bench/profiled (MemProfileRate 4096); its figures are not comparable\n")
	}
	var reports []scenarioReport
	for _, sc := range o.scenarios {
		runner := runScenario
		if sc.run != nil {
			runner = sc.run
		}
		rep, err := runner(ctx, o, ps, sc)
		if err != nil {
			return reports, fmt.Errorf("%s: %w", sc.name, err)
		}
		reports = append(reports, rep)
	}
	if len(o.gcVariants) > 0 {
		if _, err := runMemory(ctx, o, ps, o.gcVariants); err != nil {
			return reports, fmt.Errorf("-memory: %w", err)
		}
	}
	fmt.Fprintf(o.out, "\n# load average at end: %s\n", loadAverage())
	if len(reports) > 0 {
		printSummary(o.out, reports, o.nginx != "", o.before != "")
	}
	if o.traced {
		printTracing(o.out, reports)
	}
	return reports, nil
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}
