package app

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/metrics"
	"github.com/authproxy/authproxy/proxy"
	"github.com/authproxy/authproxy/store"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
)

//go:embed demo.yaml
var demoConfig []byte

// demoSecret is the fake APIs' client secret in the demo; it is not a real
// credential, but is treated as one all the same.
const demoSecret = "demo-secret"

// check runs `authproxy check`; runCommand has refused a missing --config.
func check(path string, opts Options) int {
	// Config asks about each upstream's credentials as it checks the
	// rest, so that every problem is said in one run; what is only risky
	// is said beside them.
	var warnings []string
	cfg, err := config.Load(path, config.Options{Lookup: opts.LookupEnv, CheckUpstream: func(u config.Upstream) config.Problems {
		warnings = append(warnings, credentialWarnings(u)...)
		return credentialProblems(u)
	}})
	if cfg != nil {
		warnings = append(warnings, dpopFleetWarnings(cfg)...)
	}
	for _, w := range warnings {
		fmt.Fprintf(opts.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return 2
	}
	fmt.Fprintf(opts.Stdout, "%s: OK, %d upstream(s)\n", path, len(cfg.Upstreams))
	return 0
}

func serve(ctx context.Context, path string, opts Options) int {
	var cfg *config.Config
	var err error
	var demo []string
	if path == "" {
		var stopDemo func()
		cfg, demo, stopDemo, err = startDemo(opts)
		if err == nil {
			defer stopDemo()
		}
	} else {
		cfg, err = config.Load(path, config.Options{Lookup: opts.LookupEnv})
	}
	if err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return 2
	}
	logger := newLogger(cfg.Log, opts)
	// What check warns of is said at start too, for whoever never runs
	// check; what it would refuse, building the proxy refuses below.
	for _, u := range cfg.Upstreams {
		for _, w := range credentialWarnings(u) {
			logger.Warn(w)
		}
	}
	for _, w := range dpopFleetWarnings(cfg) {
		logger.Warn(w)
	}
	gc := setGCDefaults(opts.getenv, cfg.Limits.ReplayMemory, cgroupMemoryLimit())
	logger.WithFields(logrus.Fields{"gogc": gc.GOGC, "memory_limit": gc.MemoryLimit}).Debug("garbage collector defaults (-1: as GOGC or GOMEMLIMIT set it)")
	tokenStores, err := openStore(ctx, cfg, logger)
	if err != nil {
		logger.WithError(err).Error("cannot open the token store")
		return 2
	}
	defer tokenStores.close()
	tracer, stopTracing, err := startTracing(ctx, cfg.Tracing, opts.getenv, logger)
	if err != nil {
		logger.WithError(err).Error("cannot start tracing")
		return 2
	}
	defer stopTracing() // after the servers and caches, whose last spans it sends
	tokenStores.tracer = tracer
	p := &program{stores: tokenStores, log: logger, now: opts.Now, replay: proxy.NewReplayBudget(cfg.Limits.ReplayMemory)}
	if access := newAccessLog(logger, cfg.Log.Format); access != nil {
		p.access = access
		defer access.out.Close() // writes the access lines it holds, at shutdown
	}
	p.metrics = metrics.New(p.gauges)
	state, err := p.build(ctx, cfg, nil)
	if err != nil {
		logger.WithError(err).Error("cannot build the proxy")
		return 2
	}
	p.state.Store(state)
	// The caches' background refreshes end before the store they save to
	// is closed.
	defer func() { p.state.Load().closeCachesNotIn(nil) }()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.WithError(err).Error("cannot listen")
		return 1
	}
	// WriterLevel starts a goroutine that lives until the writer is closed.
	serverLog := logger.WriterLevel(logrus.DebugLevel)
	defer serverLog.Close()
	srv := &http.Server{
		Handler: p.metrics.InFlight(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.state.Load().handler.ServeHTTP(w, r)
		})),
		// Slow-header clients are cut off; bodies may take longer. Headers
		// over MaxHeaderBytes get 431 from net/http.
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
		ErrorLog:          log.New(serverLog, "", 0),
	}
	adminSrv, adminLn, err := p.adminServer(cfg.AdminListen, cfg.Limits)
	if err != nil {
		ln.Close()
		logger.WithError(err).Error("cannot listen for the admin endpoints")
		return 1
	}
	fwdSrv, fwdLn, fwd, err := p.forwardServer(cfg, srv.ErrorLog)
	if err != nil {
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		logger.WithError(err).Error("cannot listen for the forward proxy")
		return 1
	}
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Name
	}
	fields := logrus.Fields{"addr": ln.Addr().String(), "upstreams": strings.Join(names, ",")}
	if adminLn != nil {
		fields["admin"] = adminLn.Addr().String()
	}
	if fwdLn != nil {
		fields["forward_proxy"] = fwdLn.Addr().String()
	}
	logger.WithFields(fields).Info("authproxy listening")
	for _, d := range demo {
		logger.Info(strings.ReplaceAll(d, "{addr}", ln.Addr().String()))
	}
	// Watch before saying we are ready: a change made right after start-up
	// must not be missed.
	if path != "" {
		stopReload := p.watch(ctx, path, opts)
		defer stopReload()
	}
	if adminLn != nil && opts.AdminReady != nil {
		opts.AdminReady(adminLn.Addr().String())
	}
	if fwdLn != nil && opts.ForwardReady != nil {
		opts.ForwardReady(fwdLn.Addr().String())
	}
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}

	servers, listeners := []*http.Server{srv}, []net.Listener{ln}
	if adminSrv != nil {
		servers, listeners = append(servers, adminSrv), append(listeners, adminLn)
		defer adminSrv.Close()
	}
	if fwdSrv != nil {
		servers, listeners = append(servers, fwdSrv), append(listeners, fwdLn)
		defer fwd.Close()
		defer fwdSrv.Close()
	}
	serveErr, err := runServers(ctx, servers, listeners)
	if err != nil {
		logger.WithError(err).Error("server failed")
		return 1
	}
	// Not ready from here on, so load balancers stop sending before the
	// listener closes.
	p.shuttingDown.Store(true)
	logger.WithField("timeout", cfg.ShutdownTimeout.String()).Info("shutting down: draining in-flight requests")
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	shutdownForward(drainCtx, fwdSrv, fwd, logger)
	if err := srv.Shutdown(drainCtx); err != nil {
		logger.WithError(err).Warn("drain cut short")
		srv.Close()
		return 1
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		logger.WithError(err).Error("server failed")
		return 1
	}
	logger.Info("stopped")
	return 0
}

func newLogger(c config.Log, opts Options) *logrus.Logger {
	l := logrus.New()
	l.Out = opts.Stderr
	if c.Format == "text" {
		l.Formatter = &logrus.TextFormatter{FullTimestamp: true}
	} else {
		l.Formatter = jsonFormatter{}
	}
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		level = logrus.InfoLevel // config validation has already refused it
	}
	l.Level = level
	return l
}

// stores is what openStore opens: the Store every refresh grant keeps its
// refresh token in and, with Redis, the store the caches share tokens
// through with the other replicas.
type stores struct {
	store   auth.Store
	shared  auth.Shared // nil unless Redis
	lockTTL time.Duration
	close   func() error
	// tracer records the token sources' and the proxy's spans; nil: off.
	tracer trace.TracerProvider
}

// openStore opens the configured token store. A file store is read whole
// once, so that a corrupt file stops the proxy at start. Redis need not
// be reachable: client-credentials upstreams fetch on their own until it
// is, and refresh-token upstreams wait for it.
func openStore(ctx context.Context, cfg *config.Config, log logrus.FieldLogger) (*stores, error) {
	c := cfg.Store
	switch c.Type {
	case "memory":
		return &stores{store: &store.Memory{}, close: func() error { return nil }}, nil
	case "redis":
		var key []byte
		if c.EncryptionKey != "" {
			key = []byte(c.EncryptionKey.Reveal())
		}
		store.SetRedisLogger(func(format string, args ...any) { log.Debugf("redis: "+format, args...) })
		// Not ctx: requests drained after a SIGTERM still use it; close ends it.
		r, err := store.OpenRedis(context.WithoutCancel(ctx), store.RedisOptions{Mode: c.Mode, URL: c.URL.Reveal(), KeyPrefix: c.KeyPrefix, EncryptionKey: key})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		checkRedis(ctx, r, cfg, log)
		return &stores{store: r, shared: r, lockTTL: c.LockTTL, close: r.Close}, nil
	}
	f := &store.File{Path: c.Path}
	if err := f.Check(); err != nil {
		return nil, err
	}
	return &stores{store: f, close: func() error { return nil }}, nil
}

// checkRedis says at start what an operator should know: that Redis is
// down (the proxy runs anyway), or that it does not sync every write to
// disk while it holds refresh tokens, which a Redis restart would lose.
func checkRedis(ctx context.Context, r *store.Redis, cfg *config.Config, log logrus.FieldLogger) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		log.WithError(err).Warn("the shared token store (redis) is unreachable; client-credentials upstreams fetch their own tokens, refresh-token upstreams answer 503, until it is back")
		return
	}
	refresh := false
	for _, u := range cfg.Upstreams {
		refresh = refresh || u.Token.GrantType == "refresh_token"
	}
	if !refresh {
		return
	}
	switch durable, err := r.Durable(ctx); {
	case err != nil:
		log.WithError(err).Debug("cannot read redis's persistence settings (CONFIG GET); make sure it runs with appendonly yes, appendfsync always")
	case !durable:
		log.Warn("redis does not sync every write to disk (it needs appendonly yes and appendfsync always): a Redis restart may lose a rotated refresh token, and with it the upstream's authorization")
	}
}
