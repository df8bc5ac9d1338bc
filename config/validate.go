package config

import "time"

// fileConfig mirrors proxy.yaml key for key, as decoded (see decode.go).
// Each section's struct is in the file that checks it: server.go,
// inbound.go, store.go, tracing.go, forward.go, upstream.go (with
// token.go, dpop.go, tls.go, inject.go, replay.go); values read from
// text are in units.go.
// A key is added as a field there, with its check beside the others.
type fileConfig struct {
	Listen          string                  `mapstructure:"listen"`
	Log             fileLog                 `mapstructure:"log"`
	ShutdownTimeout *duration               `mapstructure:"shutdown_timeout"`
	Inbound         fileInbound             `mapstructure:"inbound"`
	Limits          fileLimits              `mapstructure:"limits"`
	Store           fileStore               `mapstructure:"store"`
	Admin           fileAdmin               `mapstructure:"admin"`
	Tracing         fileTracing             `mapstructure:"tracing"`
	Upstreams       map[string]fileUpstream `mapstructure:"upstreams"`
	ForwardProxy    fileForwardProxy        `mapstructure:"forward_proxy"`
}

// validate checks every section, applies the defaults, and checks what
// lies between sections.
func (p *Problems) validate(fc *fileConfig, dir string) *Config {
	cfg := p.server(fc)
	cfg.Inbound = p.inbound(fc.Inbound)
	cfg.Store = p.store(fc.Store, dir)
	cfg.Upstreams = p.upstreams(fc.Upstreams, dir)
	cfg.ForwardProxy = p.forwardProxy(fc.ForwardProxy, cfg.Upstreams, fc.Upstreams, dir)
	cfg.Tracing = p.tracing(fc.Tracing)
	for _, u := range cfg.Upstreams {
		if cfg.Store.Type == "redis" && cfg.Store.LockTTL <= u.Token.Timeout {
			p.add("store.lock_ttl", "%s is not longer than upstreams.%s.token.timeout (%s): a replica must finish a token request while it holds the lock, or another may redeem the same refresh token; write e.g. %s",
				cfg.Store.LockTTL, u.Name, u.Token.Timeout, u.Token.Timeout+5*time.Second)
		}
	}
	return cfg
}
