package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
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
	now          func() time.Time
	metrics      *metrics.Metrics
	replay       *proxy.ReplayBudget // every upstream's replay copies; reloads change only its limit
	state        atomic.Pointer[proxyState]
	shuttingDown atomic.Bool
}

// proxyState is one config's handler and token caches.
type proxyState struct {
	cfg       *config.Config
	handler   http.Handler
	upstreams []upstreamRuntime
}

type upstreamRuntime struct {
	name     string
	identity string // what the token depends on; see tokenIdentity
	cache    *auth.Cache
}

// build makes the handler for cfg. Caches of prev whose upstream has the
// same name and token identity are kept, with their tokens; any change to
// the token endpoint, client, secret or scopes gets a new cache, so an old
// token never reaches a changed upstream.
func (rt *program) build(ctx context.Context, cfg *config.Config, prev *proxyState) (*proxyState, error) {
	kept := map[string]*auth.Cache{}
	if prev != nil {
		for _, u := range prev.upstreams {
			kept[u.name+"\x00"+u.identity] = u.cache
		}
	}
	st := &proxyState{cfg: cfg}
	ups := make([]proxy.Upstream, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		identity := tokenIdentity(u)
		cache := kept[u.Name+"\x00"+identity]
		if cache == nil {
			var err error
			cache, err = newTokenSource(ctx, u, rt.stores, rt.log.WithField("upstream", u.Name), rt.now, rt.metrics)
			if err != nil {
				return nil, err
			}
		}
		st.upstreams = append(st.upstreams, upstreamRuntime{name: u.Name, identity: identity, cache: cache})
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
	h, err := proxy.New(ups, proxy.Options{
		Log:             rt.log,
		MaxRequestBody:  cfg.Limits.MaxRequestBody,
		BodyReadTimeout: cfg.Limits.BodyReadTimeout,
		ReplayBudget:    rt.replay,
		Inbound:         proxy.Inbound{APIKeys: keys, APIKeyHeader: cfg.Inbound.APIKeyHeader, AllowCIDRs: cfg.Inbound.AllowCIDRs},
		OnRequest: func(ev proxy.RequestEvent) {
			rt.metrics.Request(ev.Upstream, ev.Method, ev.Status, ev.Duration, ev.Replay)
			if ev.ReplaySkipped != "" {
				rt.metrics.ReplaySkipped(ev.Upstream, ev.ReplaySkipped)
			}
			if ev.Truncated {
				rt.metrics.UpstreamTruncated(ev.Upstream)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	st.handler = h
	rt.replay.SetLimit(cfg.Limits.ReplayMemory)
	return st, nil
}

// tokenIdentity hashes everything a token depends on, the secret
// included, so that a rotated secret or a changed endpoint gets a new
// cache. The hash is never shown.
func tokenIdentity(u config.Upstream) string {
	t := u.Token
	sum := sha256.Sum256(fmt.Appendf(nil, "%q|%q|%q|%q|%q|%q|%q|%v|%v|%q|%v|%v|%v|%v",
		t.GrantType, t.URL, t.ClientID, t.ClientSecret.Reveal(), t.AuthMethod, t.BodyFormat, t.RefreshToken.Reveal(),
		t.Scopes, t.Params, u.Target.String(), t.RefreshBefore, t.DefaultLifetime, t.MinLifetime, t.Timeout))
	return hex.EncodeToString(sum[:])
}

// newTokenSource builds the grant an upstream's config asks for, wrapped
// in a cache that reports to m and, with Redis, shares its token.
func newTokenSource(ctx context.Context, u config.Upstream, st *stores, logger logrus.FieldLogger, now func() time.Time, m *metrics.Metrics) (*auth.Cache, error) {
	client := auth.Client{
		TokenURL: u.Token.URL, ClientID: u.Token.ClientID, ClientSecret: u.Token.ClientSecret.Reveal(),
		AuthMethod: auth.AuthMethod(u.Token.AuthMethod), BodyFormat: auth.BodyFormat(u.Token.BodyFormat), Scopes: u.Token.Scopes,
		Params: u.Token.Params, HTTPClient: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, Now: now,
	}
	opts := auth.CacheOptions{
		RefreshBefore:   u.Token.RefreshBefore,
		DefaultLifetime: u.Token.DefaultLifetime,
		MinLifetime:     u.Token.MinLifetime,
		FetchTimeout:    u.Token.Timeout,
		Now:             now,
		Log:             logger,
		OnFetch:         func(reason string, err error) { m.TokenFetch(u.Name, reason, err) },
	}
	refresh := u.Token.GrantType == "refresh_token"
	if st.shared != nil {
		opts.Shared, opts.SharedKey, opts.LockTTL = st.shared, sharedKey(u), st.lockTTL
		// Any replica may hold its own client-credentials token; a refresh
		// token redeemed twice can lock the account out.
		opts.LocalFallback = !refresh
		opts.OnShared = func(event string) { m.SharedToken(u.Name, event) }
	}
	if refresh {
		grant := &auth.RefreshGrant{Client: client, Name: u.Name, InitialRefreshToken: u.Token.RefreshToken.Reveal(),
			Store: st.store, Log: logger, Shared: st.shared != nil}
		stored, err := grant.Open(ctx)
		if err != nil {
			return nil, err
		}
		if stored != nil {
			logger.Info("reusing the stored access token")
		}
		opts.Initial = stored
		return auth.NewCache(grant, opts), nil
	}
	grant := &auth.ClientCredentials{Client: client}
	return auth.NewCache(grant, opts), nil
}

// sharedKey names an upstream's token in the shared store: its name and
// everything that makes its tokens differ (endpoint, client, scopes and
// extra parameters such as an audience), so that replicas mid-way through
// a config change never share a token meant for another client.
func sharedKey(u config.Upstream) string {
	scope := slices.Clone(u.Token.Scopes)
	for k, v := range u.Token.Params {
		scope = append(scope, "param:"+k+"="+v)
	}
	return u.Name + ":" + auth.Fingerprint(u.Token.URL, u.Token.ClientID, scope)
}

// adminServer builds the admin endpoints' server; nil when turned off.
func (rt *program) adminServer(addr string) (*http.Server, net.Listener, error) {
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	h := &admin.Handler{
		Upstreams:    rt.adminUpstreams,
		ShuttingDown: &rt.shuttingDown,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now
			if rt.now != nil {
				now = rt.now
			}
			for _, u := range rt.state.Load().upstreams {
				st := u.cache.Status()
				secs := 0.0
				if st.Valid && !st.Expiry.IsZero() {
					secs = st.Expiry.Sub(now()).Seconds()
				}
				rt.metrics.TokenExpiry(u.name, secs)
				if st.Shared {
					rt.metrics.SharedStoreUp(u.name, st.SharedError == nil)
				}
			}
			rt.metrics.ReplayMemory(rt.replay.InUse())
			rt.metrics.Handler().ServeHTTP(w, r)
		}),
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln, nil
}

func (rt *program) adminUpstreams() []admin.Upstream {
	var out []admin.Upstream
	for _, u := range rt.state.Load().upstreams {
		cache := u.cache
		out = append(out, admin.Upstream{
			Name: u.name,
			State: func() admin.State {
				st := cache.Status()
				return admin.State{Valid: st.Valid, ExpiresAt: st.Expiry, LastRefresh: st.LastRefresh, LastError: st.LastError,
					SharedStore: sharedMode(st), SharedStoreError: st.SharedError}
			},
			Ensure: func(ctx context.Context) error { _, err := cache.Token(ctx); return err },
			Reason: reasonFor,
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

// reasonFor names why an upstream has no usable token.
func reasonFor(err error) string {
	var re *auth.RetrieveError
	var netErr net.Error
	switch {
	case err == nil:
		return "no_token_yet"
	case errors.Is(err, auth.ErrReauthorizationRequired):
		return "reauthorization_required"
	case errors.Is(err, auth.ErrSharedStoreUnavailable):
		return "token_store_unavailable"
	case errors.As(err, &re):
		return "token_endpoint_error"
	case errors.Is(err, auth.ErrBadResponse):
		return "token_endpoint_bad_response"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return "token_endpoint_unreachable"
	default:
		return "token_unavailable"
	}
}
