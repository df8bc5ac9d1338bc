package app

import (
	"context"
	_ "embed"
	"errors"
	"flag"
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

// serveCommand is `authproxy serve`, the default command: the proxy.
var serveCommand = command{
	name: "serve", args: "[--config FILE]", summary: "run the proxy (the default command)",
	about: `Run the proxy. A change to the config file is applied without a restart,
as is SIGHUP; an invalid one is logged and the running config stays.
With no --config, serve the built-in demo: the fake APIs the tests use,
on loopback, behind the proxy on 127.0.0.1:8080.`,
	example: "authproxy serve --config proxy.yaml",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		path := configFlag(fs, opts, "; none: the built-in demo")
		return func(ctx context.Context, _ string) error { return serve(ctx, *path, opts) }
	},
}

// serve runs the proxy until ctx is done, then drains it. A config that
// cannot be served is refused (exit 2); a failure to listen or serve is
// exit 1. Each is logged as it is met, in the log's format.
func serve(ctx context.Context, path string, opts Options) error {
	cfg, demo, stopDemo, err := loadServeConfig(path, opts)
	if err != nil {
		return refuse(err)
	}
	defer stopDemo()
	logger := newLogger(cfg.Log, opts)
	warnAtStart(cfg, logger)
	gc := setGCDefaults(opts.getenv, cfg.Limits.ReplayMemory, cgroupMemoryLimit())
	logger.WithFields(logrus.Fields{"gogc": gc.GOGC, "memory_limit": gc.MemoryLimit}).Debug("garbage collector defaults (-1: as GOGC or GOMEMLIMIT set it)")
	tokenStores, err := openStore(ctx, cfg, logger)
	if err != nil {
		logger.WithError(err).Error("cannot open the token store")
		return said(refuse(err))
	}
	defer tokenStores.close()
	tracer, stopTracing, err := startTracing(ctx, cfg.Tracing, opts.getenv, logger)
	if err != nil {
		logger.WithError(err).Error("cannot start tracing")
		return said(refuse(err))
	}
	defer stopTracing() // after the servers and caches, whose last spans it sends
	tokenStores.tracer = tracer
	p, stopProgram, err := startProgram(ctx, cfg, tokenStores, logger, opts)
	defer stopProgram()
	if err != nil {
		logger.WithError(err).Error("cannot build the proxy")
		return said(refuse(err))
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.WithError(err).Error("cannot listen")
		return said(err)
	}
	// WriterLevel starts a goroutine that lives until the writer is closed.
	serverLog := logger.WriterLevel(logrus.DebugLevel)
	defer serverLog.Close()
	s, err := p.listen(cfg, ln, log.New(serverLog, "", 0))
	if err != nil {
		return said(err)
	}
	s.announce(cfg, demo, logger)
	// Watch before saying we are ready: a change made right after start-up
	// must not be missed.
	if path != "" {
		stopReload := p.watch(ctx, path, opts)
		defer stopReload()
	}
	s.ready(opts)
	return p.serveUntilDone(ctx, cfg, s)
}

// loadServeConfig loads the config serve runs: the file at path or, with
// none, the built-in demo's, whose fake APIs it starts. stop ends those;
// it is never nil.
func loadServeConfig(path string, opts Options) (cfg *config.Config, demo []string, stop func(), err error) {
	if path != "" {
		cfg, err = config.Load(path, opts.config())
		return cfg, nil, func() {}, err
	}
	cfg, demo, stop, err = startDemo(opts)
	if err != nil {
		return nil, nil, func() {}, err
	}
	return cfg, demo, stop, nil
}

// warnAtStart says what check warns of at start too, for whoever never
// runs check; what it would refuse, building the proxy refuses.
func warnAtStart(cfg *config.Config, logger logrus.FieldLogger) {
	for _, u := range cfg.Upstreams {
		for _, w := range credentialWarnings(u) {
			logger.Warn(w)
		}
	}
	for _, w := range dpopFleetWarnings(cfg) {
		logger.Warn(w)
	}
}

// startProgram builds the program that serves cfg, with its first state.
// stop, never nil, ends the caches' background refreshes (before the
// store they save to is closed) and then writes the access lines held.
func startProgram(ctx context.Context, cfg *config.Config, tokenStores *stores, logger *logrus.Logger, opts Options) (_ *program, stop func(), _ error) {
	p := &program{stores: tokenStores, log: logger, now: opts.Now, replay: proxy.NewReplayBudget(cfg.Limits.ReplayMemory)}
	closeAccess := func() {}
	if access := newAccessLog(logger, cfg.Log.Format); access != nil {
		p.access = access
		closeAccess = func() { access.out.Close() } // writes the access lines it holds, at shutdown
	}
	p.metrics = metrics.New(p.gauges)
	state, err := p.build(ctx, cfg, nil)
	if err != nil {
		return nil, closeAccess, err
	}
	p.state.Store(state)
	return p, func() {
		p.state.Load().closeCachesNotIn(nil)
		closeAccess()
	}, nil
}

// serving is what serve serves: the proxy's server on its listener and,
// when they are on, the admin endpoints' and the forward proxy's (nil
// when off).
type serving struct {
	proxy, admin, forward       *http.Server
	proxyLn, adminLn, forwardLn net.Listener
	fwd                         *proxy.ForwardServer
}

// listen makes the proxy's server on ln, and listens for the admin
// endpoints and the forward proxy. It logs what fails, and closes what it
// listened on before.
func (p *program) listen(cfg *config.Config, ln net.Listener, serverLog *log.Logger) (*serving, error) {
	s := &serving{proxyLn: ln}
	s.proxy = &http.Server{
		Handler: p.metrics.InFlight(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.state.Load().handler.ServeHTTP(w, r)
		})),
		// Slow-header clients are cut off; bodies may take longer. Headers
		// over MaxHeaderBytes get 431 from net/http.
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
		ErrorLog:          serverLog,
	}
	var err error
	s.admin, s.adminLn, err = p.adminServer(cfg.AdminListen, cfg.Limits)
	if err != nil {
		ln.Close()
		p.log.WithError(err).Error("cannot listen for the admin endpoints")
		return nil, err
	}
	s.forward, s.forwardLn, s.fwd, err = p.forwardServer(cfg, serverLog)
	if err != nil {
		ln.Close()
		if s.adminLn != nil {
			s.adminLn.Close()
		}
		p.log.WithError(err).Error("cannot listen for the forward proxy")
		return nil, err
	}
	return s, nil
}

// announce logs where the proxy listens, and, in the demo, what to try.
func (s *serving) announce(cfg *config.Config, demo []string, logger logrus.FieldLogger) {
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Name
	}
	fields := logrus.Fields{"addr": s.proxyLn.Addr().String(), "upstreams": strings.Join(names, ",")}
	if s.adminLn != nil {
		fields["admin"] = s.adminLn.Addr().String()
	}
	if s.forwardLn != nil {
		fields["forward_proxy"] = s.forwardLn.Addr().String()
	}
	logger.WithFields(fields).Info("authproxy listening")
	for _, d := range demo {
		logger.Info(strings.ReplaceAll(d, "{addr}", s.proxyLn.Addr().String()))
	}
}

// ready tells the caller's Ready hooks the addresses: the proxy's last,
// as it is what tests wait for.
func (s *serving) ready(opts Options) {
	if s.adminLn != nil && opts.AdminReady != nil {
		opts.AdminReady(s.adminLn.Addr().String())
	}
	if s.forwardLn != nil && opts.ForwardReady != nil {
		opts.ForwardReady(s.forwardLn.Addr().String())
	}
	if opts.Ready != nil {
		opts.Ready(s.proxyLn.Addr().String())
	}
}

// serveUntilDone serves until ctx is done, then drains the in-flight
// requests within shutdown_timeout. It logs what fails.
func (p *program) serveUntilDone(ctx context.Context, cfg *config.Config, s *serving) error {
	servers, listeners := []*http.Server{s.proxy}, []net.Listener{s.proxyLn}
	if s.admin != nil {
		servers, listeners = append(servers, s.admin), append(listeners, s.adminLn)
		defer s.admin.Close()
	}
	if s.forward != nil {
		servers, listeners = append(servers, s.forward), append(listeners, s.forwardLn)
		defer s.fwd.Close()
		defer s.forward.Close()
	}
	serveErr, err := runServers(ctx, servers, listeners)
	if err != nil {
		p.log.WithError(err).Error("server failed")
		return said(err)
	}
	// Not ready from here on, so load balancers stop sending before the
	// listener closes.
	p.shuttingDown.Store(true)
	p.log.WithField("timeout", cfg.ShutdownTimeout.String()).Info("shutting down: draining in-flight requests")
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	shutdownForward(drainCtx, s.forward, s.fwd, p.log)
	if err := s.proxy.Shutdown(drainCtx); err != nil {
		p.log.WithError(err).Warn("drain cut short")
		s.proxy.Close()
		return said(err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		p.log.WithError(err).Error("server failed")
		return said(err)
	}
	p.log.Info("stopped")
	return nil
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
