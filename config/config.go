// Package config loads proxy.yaml, environment overrides and secret files
// into plain structs, applies defaults, and validates everything at once.
//
// Only main wires this package to the others: auth and proxy never see
// viper. Every problem found is reported together, each naming its key and
// what to write instead.
package config

import (
	"net/netip"
	"net/url"
	"time"
)

// Config is a loaded, validated configuration.
type Config struct {
	// Listen is the proxy's address, host:port.
	Listen string
	// Log says how the process logs.
	Log Log
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration
	// Inbound limits who may use the proxy.
	Inbound Inbound
	// Limits bound what a client may send.
	Limits Limits
	// Store keeps refresh tokens across restarts, and with Type "redis"
	// shares every token with the other replicas.
	Store Store
	// AdminListen is the admin endpoints' address; "" turns them off.
	AdminListen string
	// Upstreams are sorted by name.
	Upstreams []Upstream
	// Digest identifies the text the config was read from (see Digest),
	// so that a watcher can tell a changed file from an event that
	// changed nothing.
	Digest string
}

// Inbound is the access control in front of every upstream.
type Inbound struct {
	// APIKeys, if any, are required of clients in APIKeyHeader.
	APIKeys      []Secret
	APIKeyHeader string
	// AllowCIDRs, if any, are the client addresses let in.
	AllowCIDRs []netip.Prefix
	// ForwardedHeaders is "drop" (client X-Forwarded-* and Forwarded are
	// removed) or "append" (the client address is appended).
	ForwardedHeaders string
}

// Store is where tokens are kept: Type "file" (at Path), "memory", or
// "redis" (at URL, shared by every replica that names it).
type Store struct {
	Type string
	Path string
	// Mode is "standalone", "sentinel" or "cluster".
	Mode string
	// URL is redis:// or rediss://; it may hold a password.
	URL Secret
	// KeyPrefix starts every Redis key.
	KeyPrefix string
	// LockTTL bounds how long one replica may hold a token's fetch lock,
	// and so how long the others wait for a replica that died.
	LockTTL time.Duration
	// EncryptionKey, if set, is 32 bytes: tokens in Redis are sealed with
	// AES-256-GCM.
	EncryptionKey Secret
}

// Limits bound what a client may send.
type Limits struct {
	MaxHeaderBytes    int64
	ReadHeaderTimeout time.Duration
	MaxRequestBody    int64 // zero: no limit
	IdleTimeout       time.Duration
	ReplayMemory      int64         // all replay copies together; zero: none kept
	BodyReadTimeout   time.Duration // a request body stalled this long gets 408; zero: never
}

// Log is the log level ("debug", "info", "warn", "error") and format
// ("json", "text").
type Log struct {
	Level  string
	Format string
}

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
	Token       Token
	Inject      Inject
	Replay      Replay
}

// Token says how to get the upstream's access token.
type Token struct {
	GrantType       string
	URL             string
	ClientID        string
	ClientSecret    Secret
	AuthMethod      string // client_secret_post | client_secret_basic
	BodyFormat      string // form | json
	Scopes          []string
	Params          map[string]string
	RefreshBefore   time.Duration
	DefaultLifetime time.Duration // zero: keep a token without expiry until a 401
	MinLifetime     time.Duration // a shorter lifetime is raised to it; a 401 still replaces the token
	Timeout         time.Duration
	// RefreshToken seeds the refresh_token grant; a stored one wins.
	RefreshToken Secret
	// AuthorizeURL and RedirectURI are for `authproxy login`.
	AuthorizeURL string
	RedirectURI  string
}

// Inject says how the token is attached.
type Inject struct {
	Header  string
	Format  string
	Headers map[string]string
}

// Replay says when a request is replayed with a fresh token.
type Replay struct {
	OnStatus []int
	MaxBody  int64
}

// Secret is a string that never prints itself, so that a config dumped
// into a log or an error shows no credential.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts like String, for %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalText redacts for encoders (JSON, YAML, logrus fields).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }
