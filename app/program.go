package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/admin"
	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/metrics"
	"github.com/authproxy/authproxy/proxy"
	"github.com/sirupsen/logrus"
)

// program is the running program: what a config reload replaces sits in
// state, behind an atomic pointer, so requests never see half a change.
type program struct {
	stores       *stores
	log          *logrus.Logger
	access       proxy.AccessLogger // nil: the access log goes through log
	now          func() time.Time
	metrics      *metrics.Metrics
	replay       *proxy.ReplayBudget // every upstream's replay copies; reloads change only its limit
	state        atomic.Pointer[proxyState]
	shuttingDown atomic.Bool
	counts       requestCounts // by the way requests came in, for /status
}

// proxyState is one config's handler and token caches.
type proxyState struct {
	cfg       *config.Config
	handler   *proxy.Handler
	upstreams []upstreamRuntime
}

type upstreamRuntime struct {
	name  string
	cache *auth.Cache
}

// build makes the handler for cfg; an unusable credential is reported by
// its key, as check reports it (see credentialError). Caches of prev
// whose upstream has the same name and token identity (auth.Identity: any
// change to the token endpoint, client, secret, scopes or target makes
// another) are kept, with their tokens, so an old token never reaches a
// changed upstream.
func (p *program) build(ctx context.Context, cfg *config.Config, prev *proxyState) (_ *proxyState, err error) {
	kept := map[string]*auth.Cache{}
	if prev != nil {
		for _, u := range prev.upstreams {
			kept[u.name] = u.cache
		}
	}
	st := &proxyState{cfg: cfg}
	defer func() {
		if err != nil {
			st.closeCachesNotIn(prev) // made for a config that is not used
		}
	}()
	ups := make([]proxy.Upstream, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		var up proxy.Upstream
		if up, err = p.upstream(ctx, cfg, u, kept[u.Name], st); err != nil {
			return nil, err
		}
		ups = append(ups, up)
	}
	keys := make([]string, len(cfg.Inbound.APIKeys))
	for i, k := range cfg.Inbound.APIKeys {
		keys[i] = k.Reveal()
	}
	forward, err := forwardSettings(cfg, p)
	if err != nil {
		return nil, err
	}
	h, err := proxy.New(ups, proxy.Options{
		Forward:         forward,
		Log:             p.log,
		AccessLog:       p.access,
		MaxRequestBody:  cfg.Limits.MaxRequestBody,
		BodyReadTimeout: cfg.Limits.BodyReadTimeout,
		ReplayBudget:    p.replay,
		TracerProvider:  p.stores.tracer,
		Inbound:         proxy.Inbound{APIKeys: keys, APIKeyHeader: cfg.Inbound.APIKeyHeader, AllowCIDRs: cfg.Inbound.AllowCIDRs},
		OnRequest:       p.onRequest,
	})
	if err != nil {
		return nil, err
	}
	st.handler = h
	p.replay.SetLimit(cfg.Limits.ReplayMemory)
	return st, nil
}

// upstream builds what proxy needs of upstream u of cfg, with the token
// cache kept from the previous config if its tokens still fit u (the
// cache is added to st, so that it is closed if the build fails).
func (p *program) upstream(ctx context.Context, cfg *config.Config, u config.Upstream, cache *auth.Cache, st *proxyState) (proxy.Upstream, error) {
	if cache == nil || cache.Identity() != tokenSettings(u).Identity() {
		var err error
		if cache, err = newTokenSource(ctx, u, p.stores, p.log.WithField("upstream", u.Name), p.now, p.metrics); err != nil {
			return proxy.Upstream{}, credentialError(cfg, u, err)
		}
	}
	st.upstreams = append(st.upstreams, upstreamRuntime{name: u.Name, cache: cache})
	transport, err := newUpstreamTransport(u, p.log.WithField("upstream", u.Name))
	if err != nil {
		return proxy.Upstream{}, credentialError(cfg, u, fmt.Errorf("upstream %q: %w", u.Name, upstreamTLSError{err}))
	}
	return proxy.Upstream{
		Name: u.Name, Target: u.Target, PathPrefix: u.PathPrefix, Hosts: u.Hosts, Tokens: cache,
		Header: u.Inject.Header, Format: u.Inject.Format, StaticHeaders: u.Inject.Headers,
		ReplayOn: u.Replay.OnStatus, MaxReplayBody: u.Replay.MaxBody, Transport: transport,
		IdleTimeout: u.IdleTimeout, AppendForwardedFor: cfg.Inbound.ForwardedHeaders == "append",
		DPoP: cache.DPoPKey(),
	}, nil
}

// onRequest feeds the metrics and /status's counts with one answered
// request.
func (p *program) onRequest(ev proxy.RequestEvent) {
	p.metrics.Request(ev.Upstream, ev.Method, ev.Status, ev.Duration, ev.Replay, ev.Error, string(ev.Fault))
	if ev.ReplaySkipped != "" {
		p.metrics.ReplaySkipped(ev.Upstream, ev.ReplaySkipped)
	}
	if ev.Truncated {
		p.metrics.UpstreamTruncated(ev.Upstream)
	}
	if ev.Mode == proxy.ModeForward {
		host := ev.Host
		if ev.Upstream == "" {
			host = "" // a host no upstream took: any name a client chose
		}
		p.metrics.ForwardRequest(ev.Upstream, host, ev.Status)
	}
	p.counts.record(ev)
}

// tokenSettings copies an upstream's token settings out of the config:
// auth decides from them how tokens are got, and what they depend on.
func tokenSettings(u config.Upstream) auth.Settings {
	t := u.Token
	return auth.Settings{
		Name: u.Name, Grant: auth.GrantType(t.GrantType), RefreshToken: t.RefreshToken.Reveal(),
		Client: auth.Client{
			TokenURL: t.URL, ClientID: t.ClientID, ClientSecret: t.ClientSecret.Reveal(),
			AuthMethod: auth.AuthMethod(t.AuthMethod), BodyFormat: auth.BodyFormat(t.BodyFormat), Scopes: t.Scopes, Params: t.Params,
			Audience: t.Audience, Resource: t.Resource, TokenType: t.TokenType,
		},
		RefreshBefore: t.RefreshBefore, DefaultLifetime: t.DefaultLifetime, MinRefreshInterval: t.MinRefreshInterval, Timeout: t.Timeout,
		Target:         u.Target.String(),
		PrivateKeyFile: t.PrivateKeyFile, KeyID: t.KeyID, SigningAlg: auth.SigningAlg(t.SigningAlg),
		AssertionAudience: t.AssertionAudience, ClientAssertionFile: t.ClientAssertionFile, TLS: tlsFiles(t.TLS),
		AssertionFile: t.AssertionFile, SubjectTokenFile: t.SubjectTokenFile, SubjectTokenType: t.SubjectTokenType,
		ActorTokenFile: t.ActorTokenFile, ActorTokenType: t.ActorTokenType, RequestedTokenType: t.RequestedTokenType,
		Username: t.Username, Password: t.Password.Reveal(),
		DPoPKeyFile: dpopKeyFile(t), DPoPSigningAlg: dpopSigningAlg(t),
	}
}

// newTokenSource builds an upstream's token source, reporting to m and,
// with Redis, sharing its token with the fleet.
func newTokenSource(ctx context.Context, u config.Upstream, st *stores, logger logrus.FieldLogger, now func() time.Time, m *metrics.Metrics) (*auth.Cache, error) {
	return auth.NewSource(ctx, tokenSettings(u), auth.Options{
		Store: st.store, Shared: st.shared, LockTTL: st.lockTTL, Now: now, Log: logger,
		OnFetch:        func(reason string, err error) { m.TokenFetch(u.Name, reason, err) },
		OnShared:       func(event string) { m.SharedToken(u.Name, event) },
		TracerProvider: st.tracer,
	})
}

// adminServer builds the admin endpoints' server; nil when turned off.
// It cuts off slow headers and idle connections with the proxy
// listener's limits: whoever reaches one can reach the other, and the
// limits the operator chose for slow or idle clients hold on both.
func (p *program) adminServer(addr string, limits config.Limits) (*http.Server, net.Listener, error) {
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	h := &admin.Handler{
		Upstreams:    p.adminUpstreams,
		ShuttingDown: &p.shuttingDown,
		Metrics:      p.metrics.Handler(),
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: limits.ReadHeaderTimeout, IdleTimeout: limits.IdleTimeout,
		MaxHeaderBytes: int(limits.MaxHeaderBytes)}, ln, nil
}

// gauges reads what the metrics' gauges show, at each scrape.
func (p *program) gauges() metrics.Gauges {
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	g := metrics.Gauges{ReplayMemory: p.replay.InUse()}
	state := p.state.Load()
	if state == nil {
		return g
	}
	for _, u := range state.upstreams {
		st := u.cache.Status()
		tg := metrics.TokenGauge{Upstream: u.name, Shared: st.Shared, SharedUp: st.SharedError == nil}
		if st.Valid && !st.Expiry.IsZero() {
			tg.ExpiresIn = st.Expiry.Sub(now()).Seconds()
		}
		g.Tokens = append(g.Tokens, tg)
	}
	return g
}

func (p *program) adminUpstreams() []admin.Upstream {
	var out []admin.Upstream
	state := p.state.Load()
	for _, u := range state.upstreams {
		cache := u.cache
		var hosts []string
		var requests func() admin.Requests
		if state.cfg.ForwardProxy.Listen != "" {
			for _, cu := range state.cfg.Upstreams {
				if cu.Name == u.name {
					hosts = cu.Hosts
				}
			}
			requests = p.counts.requests(u.name)
		}
		out = append(out, admin.Upstream{
			ForwardHosts: hosts, Requests: requests,
			Name: u.name,
			State: func() admin.State {
				st := cache.Status()
				return admin.State{Valid: st.Valid, ExpiresAt: st.Expiry, LastRefresh: st.LastRefresh, LastError: st.LastError,
					SharedStore: sharedMode(st), SharedStoreError: st.SharedError, DPoPThumbprint: dpopThumbprint(cache)}
			},
			Ensure: func(ctx context.Context) error { _, err := cache.Token(ctx); return err },
			Reason: func(err error) string { return proxy.TokenFailure(err).Reason },
		})
	}
	return out
}

// sharedMode says how an upstream uses the shared store: "shared",
// "fallback" (unreachable; fetching alone) or "unavailable" (unreachable;
// failing closed); "" without one.
func sharedMode(st auth.Status) string {
	switch {
	case !st.Shared:
		return ""
	case st.SharedError == nil:
		return "shared"
	case st.LocalFallback:
		return "fallback"
	default:
		return "unavailable"
	}
}
