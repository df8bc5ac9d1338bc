// Package app is the authproxy program: it parses the command line, loads
// the config and wires auth and proxy together. main only calls Run; tests
// call it too, on port 0, to run the real program in-process.
package app

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/authproxy/authproxy/config"
)

// Version is set at build time with -ldflags "-X .../app.Version=...".
var Version = "dev"

// Options is what Run takes from its surroundings. The zero value of each
// field has the meaning its comment gives.
type Options struct {
	// Args are the command-line arguments without the program name.
	Args []string
	// Stdout and Stderr receive output and logs; nil means os.Stdout and
	// os.Stderr.
	Stdout, Stderr io.Writer
	// LookupEnv is the program's environment, read through it alone so
	// that a test can give it: ${VAR} in the config, AUTHPROXY_CONFIG and
	// the AUTHPROXY_* overrides,
	// GOGC and GOMEMLIMIT (as serve's defaults respect them), OTEL_SDK_DISABLED
	// and the OTLP protocol, DISPLAY for login's browser. nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Ready, if set, is called with the proxy's address once it accepts
	// connections (useful with listen: 127.0.0.1:0).
	Ready func(addr string)
	// ForwardReady, if set, is called with the forward proxy's address,
	// when forward_proxy.listen is set.
	ForwardReady func(addr string)
	// AdminReady, if set, is called with the admin endpoints' address.
	AdminReady func(addr string)
	// Now is the token caches' clock; nil means time.Now. Tests pass a
	// fake clock shared with the fake APIs.
	Now func() time.Time
}

// getenv is LookupEnv as os.Getenv is: "" for a variable not set.
func (o Options) getenv(key string) string {
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, _ := lookup(key)
	return v
}

// config is what config's loading takes of the environment: the
// program's, for ${VAR} and for the AUTHPROXY_* overrides alike.
func (o Options) config() config.Options {
	return config.Options{Lookup: o.LookupEnv, Env: o.LookupEnv}
}

// Run runs the program until ctx is done and returns its exit code
// (exit, in exitcode.go, decides it): 0 after a clean shutdown (or help
// that was asked for), 1 on a runtime failure, 2 on bad usage or config.
func Run(ctx context.Context, opts Options) int {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	return exit(opts.Stderr, runCommand(ctx, opts))
}
