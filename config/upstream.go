package config

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

const (
	defaultUpstreamTimeout = 60 * time.Second
	defaultUpstreamIdle    = 5 * time.Minute
)

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	prefixPattern = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)*/?$`)
)

// Upstream is one API behind the proxy.
type Upstream struct {
	Name string
	// Target is where requests go.
	Target *url.URL
	// PathPrefix routes requests here; "" takes all others.
	PathPrefix string
	// Timeout bounds the wait for the upstream's response headers.
	Timeout time.Duration
	// IdleTimeout cuts off a response body that stalls this long; zero:
	// never.
	IdleTimeout time.Duration
	// TLS is how the upstream is reached over https: a private CA, a
	// client certificate (an internal API that requires mutual TLS), the
	// name its certificate is checked against.
	TLS    TLS
	Token  Token
	Inject Inject
	Replay Replay
}

// fileUpstream is one entry of upstreams; its sections are checked in
// token.go, inject.go and replay.go.
type fileUpstream struct {
	Target     string          `mapstructure:"target"`
	PathPrefix *string         `mapstructure:"path_prefix"` // nil: unset, so "/<name>"
	Timeout    *duration       `mapstructure:"upstream_timeout"`
	Idle       *duration       `mapstructure:"upstream_idle_timeout"`
	TLS        fileUpstreamTLS `mapstructure:"tls"`
	Token      fileToken       `mapstructure:"token"`
	Inject     fileInject      `mapstructure:"inject"`
	Replay     fileReplay      `mapstructure:"replay"`
}

// upstreams checks every upstream, sorted by name, and what they must not
// share: a path prefix.
func (p *Problems) upstreams(fus map[string]fileUpstream, dir string) []Upstream {
	if len(fus) == 0 {
		p.required("upstreams", nil, "no upstream is configured; add one under upstreams: (see proxy.yaml)")
	}
	names := make([]string, 0, len(fus))
	for name := range fus {
		names = append(names, name)
	}
	sort.Strings(names)
	var ups []Upstream
	prefixes := map[string]string{}
	for _, name := range names {
		u := p.upstream(name, fus[name], dir)
		if other, dup := prefixes[u.PathPrefix]; dup {
			p.add("upstreams."+name+".path_prefix", "%q is also the prefix of upstream %q; give each upstream its own", u.PathPrefix, other)
		}
		prefixes[u.PathPrefix] = name
		ups = append(ups, u)
	}
	return ups
}

func (p *Problems) upstream(name string, fu fileUpstream, dir string) Upstream {
	key := "upstreams." + name
	if !namePattern.MatchString(name) {
		p.add(key, "the name may hold only lower-case letters, digits, - and _")
	}
	u := Upstream{
		Name:        name,
		Target:      p.url(key+".target", fu.Target),
		Timeout:     fu.Timeout.or(defaultUpstreamTimeout),
		IdleTimeout: fu.Idle.or(defaultUpstreamIdle),
	}
	if u.Target != nil && u.Target.User != nil {
		p.add(key+".target", "must not hold credentials; the proxy supplies them")
	}
	prefix := "/" + name
	if fu.PathPrefix != nil {
		prefix = *fu.PathPrefix
	}
	if prefix != "" && !prefixPattern.MatchString(prefix) || strings.Contains(prefix, "/./") || strings.Contains(prefix+"/", "/../") {
		p.add(key+".path_prefix", "%q is not a plain path; write e.g. /%s, or \"\" to send every request here", prefix, name)
	}
	u.PathPrefix = strings.TrimSuffix(prefix, "/")
	u.TLS = p.tls(key+".tls", fu.TLS, dir)
	if u.Target != nil && u.Target.Scheme != "https" && u.TLS != (TLS{}) {
		p.add(key+".tls", "is for an https target; %s is http", u.Target)
	}
	u.Token = p.token(key+".token", fu.Token, dir)
	u.Inject = p.inject(key+".inject", fu.Inject)
	u.Replay = p.replay(key+".replay", fu.Replay)
	return u
}
