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
	// MaxConnectionsAuto, max_connections left unset, lets app choose the
	// cap from the process's memory limit: none where there is none, so
	// that a proxy with room keeps opening a connection per request in
	// flight as it always did, and one in a small container does not open
	// more than it can hold (1,000 requests in flight in 64 MiB, bench
	// -memory).
	MaxConnectionsAuto = -1
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
	// MaxConnections caps the connections open to the upstream at once;
	// requests past it wait for one to be free. Zero: no cap;
	// MaxConnectionsAuto: from the memory limit, at start.
	MaxConnections int
	// TLS is how the upstream is reached over https: a private CA, a
	// client certificate (an internal API that requires mutual TLS), the
	// name its certificate is checked against.
	TLS TLS
	// Hosts are where the forward proxy routes to this upstream,
	// "name:port" (see forward.go); requests go to Target all the same.
	Hosts  []string
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
	MaxConns   *int            `mapstructure:"max_connections"`
	TLS        fileUpstreamTLS `mapstructure:"tls"`
	Token      fileToken       `mapstructure:"token"`
	Inject     fileInject      `mapstructure:"inject"`
	Replay     fileReplay      `mapstructure:"replay"`
	Hosts      []string        `mapstructure:"hosts"`
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

// nameLike returns name if it is allowed, or else an allowed name like
// it, for a problem to suggest: each run of other characters becomes -,
// and a name starts and ends with a letter or digit.
func nameLike(name string) string {
	if namePattern.MatchString(name) {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	if s := strings.Trim(b.String(), "-_"); s != "" {
		return s
	}
	return "api"
}

func (p *Problems) upstream(name string, fu fileUpstream, dir string) Upstream {
	key := "upstreams." + name
	validName := namePattern.MatchString(name)
	if !validName {
		p.add(key, "the name may hold only lower-case letters, digits, - and _, and starts with a letter or digit; write e.g. %s", nameLike(name))
	}
	u := Upstream{
		Name:        name,
		Target:      p.url(key+".target", fu.Target),
		Timeout:     fu.Timeout.or(defaultUpstreamTimeout),
		IdleTimeout: fu.Idle.or(defaultUpstreamIdle),
	}
	u.MaxConnections = MaxConnectionsAuto
	if fu.MaxConns != nil {
		u.MaxConnections = *fu.MaxConns
		if u.MaxConnections < 0 {
			p.add(key+".max_connections", "is %d; write a number of connections, e.g. 256, or 0 for no cap (leave it out to size it from the memory limit)", u.MaxConnections)
		}
	}
	if u.Target != nil && u.Target.User != nil {
		p.add(key+".target", "must not hold credentials; the proxy supplies them")
	}
	prefix := "/" + name
	if fu.PathPrefix != nil {
		prefix = *fu.PathPrefix
	}
	// The default prefix is the name's: if the name is refused, so is
	// the prefix, and the name's problem says it once.
	plain := prefix == "" || prefixPattern.MatchString(prefix) && !strings.Contains(prefix, "/./") && !strings.Contains(prefix+"/", "/../")
	if !plain && (fu.PathPrefix != nil || validName) {
		p.add(key+".path_prefix", "%q is not a plain path; write e.g. /%s, or \"\" to send every request here", prefix, nameLike(name))
	}
	u.PathPrefix = strings.TrimSuffix(prefix, "/")
	u.TLS = p.tls(key+".tls", fu.TLS, dir)
	if u.Target != nil && u.Target.Scheme != "https" && u.TLS != (TLS{}) {
		// Not quoted: a URL's userinfo or query may hold a credential.
		p.add(key+".tls", "is for an https target, and target is %s: write an https:// target, or remove tls", u.Target.Scheme)
	}
	u.Hosts = p.upstreamHosts(key, u.Target, fu.Hosts)
	u.Token = p.token(key+".token", fu.Token, dir)
	u.Inject = p.inject(key+".inject", fu.Inject)
	if u.Token.DPoP != nil {
		p.dpopInject(key+".inject", &u.Inject, fu.Inject)
	}
	if u.Token.TokenType != "Bearer" && strings.Contains(strings.ToLower(u.Inject.Format), "bearer") {
		p.add(key+".inject.format", "%q presents the token as Bearer, and token_type is %s; write \"{token_type} {token}\", or \"{token}\" for the raw token", u.Inject.Format, u.Token.TokenType)
	}
	u.Replay = p.replay(key+".replay", fu.Replay)
	return u
}
