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
	"github.com/authproxy/authproxy/integration/fakeapi"
	"github.com/authproxy/authproxy/proxy"
	"github.com/authproxy/authproxy/store"
	"github.com/sirupsen/logrus"
)

//go:embed demo.yaml
var demoConfig []byte

// demoSecret is the fake APIs' client secret in the demo; it is not a real
// credential, but is treated as one all the same.
const demoSecret = "demo-secret"

func check(path string, opts Options) int {
	if path == "" {
		fmt.Fprintln(opts.Stderr, "authproxy check: give the file to check with --config")
		return 2
	}
	cfg, err := config.Load(path, config.Options{Lookup: opts.LookupEnv})
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
		cfg, demo, err = startDemo(ctx, opts)
	} else {
		cfg, err = config.Load(path, config.Options{Lookup: opts.LookupEnv})
	}
	if err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return 2
	}
	logger := newLogger(cfg.Log, opts)
	tokenStore, err := openStore(cfg.Store)
	if err != nil {
		logger.WithError(err).Error("cannot open the token store")
		return 2
	}
	handler, err := newHandler(ctx, cfg, tokenStore, logger, opts.Now)
	if err != nil {
		logger.WithError(err).Error("cannot build the proxy")
		return 2
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.WithError(err).Error("cannot listen")
		return 1
	}
	// WriterLevel starts a goroutine that lives until the writer is closed.
	serverLog := logger.WriterLevel(logrus.DebugLevel)
	defer serverLog.Close()
	srv := &http.Server{
		Handler: handler,
		// Slow-header clients are cut off; bodies may take longer. Headers
		// over MaxHeaderBytes get 431 from net/http.
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
		ErrorLog:          log.New(serverLog, "", 0),
	}
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Name
	}
	logger.WithFields(logrus.Fields{"addr": ln.Addr().String(), "upstreams": strings.Join(names, ",")}).Info("authproxy listening")
	for _, d := range demo {
		logger.Info(strings.ReplaceAll(d, "{addr}", ln.Addr().String()))
	}
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		logger.WithError(err).Error("server failed")
		return 1
	case <-ctx.Done():
	}
	logger.WithField("timeout", cfg.ShutdownTimeout.String()).Info("shutting down: draining in-flight requests")
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
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
		l.Formatter = &logrus.JSONFormatter{}
	}
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		level = logrus.InfoLevel // config validation has already refused it
	}
	l.Level = level
	return l
}

// openStore opens the configured token store; a file store is read
// whole once, so that a corrupt file stops the proxy at start.
func openStore(c config.Store) (auth.Store, error) {
	if c.Type == "memory" {
		return &store.Memory{}, nil
	}
	f := &store.File{Path: c.Path}
	if err := f.Check(); err != nil {
		return nil, err
	}
	return f, nil
}

// newTokenSource builds the grant an upstream's config asks for, wrapped
// in a cache.
func newTokenSource(ctx context.Context, u config.Upstream, st auth.Store, logger logrus.FieldLogger, now func() time.Time) (*auth.Cache, error) {
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	opts := auth.CacheOptions{
		RefreshBefore:   u.Token.RefreshBefore,
		DefaultLifetime: u.Token.DefaultLifetime,
		FetchTimeout:    u.Token.Timeout,
		Now:             now,
		Log:             logger,
	}
	if u.Token.GrantType == "refresh_token" {
		grant := &auth.RefreshGrant{
			Name: u.Name, TokenURL: u.Token.URL, ClientID: u.Token.ClientID, ClientSecret: u.Token.ClientSecret.Reveal(),
			AuthMethod: auth.AuthMethod(u.Token.AuthMethod), BodyFormat: auth.BodyFormat(u.Token.BodyFormat), Scopes: u.Token.Scopes,
			InitialRefreshToken: u.Token.RefreshToken.Reveal(), Store: st, HTTPClient: client, Now: now, Log: logger,
		}
		stored, err := grant.Open(ctx)
		if err != nil {
			return nil, err
		}
		if stored != nil {
			logger.WithField("expires_in", (stored.Expiry.Sub(stored.Obtained)).String()).Info("reusing the stored access token")
		}
		opts.Initial = stored
		return auth.NewCache(grant, opts), nil
	}
	grant := &auth.ClientCredentials{
		TokenURL:     u.Token.URL,
		ClientID:     u.Token.ClientID,
		ClientSecret: u.Token.ClientSecret.Reveal(),
		AuthMethod:   auth.AuthMethod(u.Token.AuthMethod),
		BodyFormat:   auth.BodyFormat(u.Token.BodyFormat),
		Scopes:       u.Token.Scopes,
		Params:       u.Token.Params,
		HTTPClient:   client,
		Now:          now,
	}
	return auth.NewCache(grant, opts), nil
}

// newHandler builds a token cache and a proxy route for each upstream.
func newHandler(ctx context.Context, cfg *config.Config, st auth.Store, logger *logrus.Logger, now func() time.Time) (http.Handler, error) {
	ups := make([]proxy.Upstream, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		cache, err := newTokenSource(ctx, u, st, logger.WithField("upstream", u.Name), now)
		if err != nil {
			return nil, err
		}
		upstreamTransport := http.DefaultTransport.(*http.Transport).Clone()
		upstreamTransport.ResponseHeaderTimeout = u.Timeout
		// One upstream takes all of a busy app's traffic: keep enough idle
		// connections to it that bursts do not reconnect.
		upstreamTransport.MaxIdleConnsPerHost = 256
		upstreamTransport.MaxIdleConns = 1024
		ups = append(ups, proxy.Upstream{
			Name: u.Name, Target: u.Target, PathPrefix: u.PathPrefix, Tokens: cache,
			Header: u.Inject.Header, Format: u.Inject.Format, StaticHeaders: u.Inject.Headers,
			ReplayOn: u.Replay.OnStatus, MaxReplayBody: u.Replay.MaxBody, Transport: upstreamTransport,
			IdleTimeout: u.IdleTimeout, AppendForwardedFor: cfg.Inbound.ForwardedHeaders == "append",
		})
	}
	keys := make([]string, len(cfg.Inbound.APIKeys))
	for i, k := range cfg.Inbound.APIKeys {
		keys[i] = k.Reveal()
	}
	return proxy.New(ups, proxy.Options{
		Log:            logger,
		MaxRequestBody: cfg.Limits.MaxRequestBody,
		Inbound:        proxy.Inbound{APIKeys: keys, APIKeyHeader: cfg.Inbound.APIKeyHeader, AllowCIDRs: cfg.Inbound.AllowCIDRs},
	})
}

// startDemo serves the fake APIs on loopback until ctx is done and
// returns the embedded config pointed at them, with lines to log that say
// what to try.
func startDemo(ctx context.Context, opts Options) (*config.Config, []string, error) {
	vars := map[string]string{"DEMO_CLIENT_SECRET": demoSecret}
	tries := []string{"demo mode: the fake APIs run in this process; no credentials are needed. Try:"}
	for _, f := range fakeapi.All() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("demo: %w", err)
		}
		srv := &http.Server{Handler: fakeapi.New(f, "demo-client", demoSecret, opts.Now), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		context.AfterFunc(ctx, func() { srv.Close() })
		vars["DEMO_"+strings.ToUpper(f.Name)+"_URL"] = "http://" + ln.Addr().String()
		tries = append(tries, fmt.Sprintf("  curl http://{addr}/%s%s", f.Name, f.APIPath))
	}
	lookup := func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		return opts.LookupEnv(name)
	}
	cfg, err := config.Parse(demoConfig, config.Options{Lookup: lookup})
	if err != nil {
		return nil, nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, tries, nil
}
