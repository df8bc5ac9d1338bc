// Package config loads proxy.yaml, environment overrides and secret files
// into plain structs, applies defaults, and validates everything at once.
//
// Only main wires this package to the others: auth and proxy never see
// viper. Every problem found is reported together, each naming its key and
// what to write instead.
//
// The way through, one way: read and parse (load.go; text.go parses YAML
// once, keeping its unquoted values as written), the environment's
// overrides laid over the file's settings (env.go), decode (expand.go
// replaces ${VAR}, decode.go decodes into the file structs with
// mapstructure, keys.go names unknown keys), checks (validate.go, then
// one file per section), Options.CheckUpstream, and resolve (resolve.go):
// the checks only record what they found (problems.go), and one pass at
// the end drops what follows from another problem or repeats it, before
// Report sorts them and names their variables.
package config

import "time"

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
	// ForwardProxy is the listener apps reach through HTTPS_PROXY; off
	// unless its Listen is set.
	ForwardProxy ForwardProxy
	// Tracing says whether and where OpenTelemetry traces go.
	Tracing Tracing
	// Upstreams are sorted by name.
	Upstreams []Upstream
	// Digest identifies the text the config was read from (see Digest),
	// so that a watcher can tell a changed file from an event that
	// changed nothing.
	Digest string

	// fromEnv maps each key an AUTHPROXY_ variable set to the variable,
	// for Report; nil: none did.
	fromEnv map[string]string
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
