// Package app is the authproxy program: it parses the command line, loads
// the config and wires auth and proxy together. main only calls Run; tests
// call it too, on port 0, to run the real program in-process.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
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
	// LookupEnv resolves ${VAR} in the config; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Ready, if set, is called with the proxy's address once it accepts
	// connections (useful with listen: 127.0.0.1:0).
	Ready func(addr string)
	// AdminReady, if set, is called with the admin endpoints' address.
	AdminReady func(addr string)
	// Now is the token caches' clock; nil means time.Now. Tests pass a
	// fake clock shared with the fake APIs.
	Now func() time.Time
}

const usage = `authproxy: an authenticating reverse proxy for OAuth2 APIs

Usage:
  authproxy [serve] [--config FILE]        run the proxy (default command)
  authproxy check --config FILE            validate the config and exit
  authproxy login NAME --config FILE       get the first refresh token for an
                                           upstream with grant_type: refresh_token
  authproxy health [--config FILE | --url URL]
                                           exit 0 if a running proxy's /healthz
                                           answers 200 (a HEALTHCHECK without a shell)
  authproxy token NAME --config FILE [--show]
                                           get an upstream's token and print its
                                           status; the token itself only with --show
  authproxy fakeapis [--host H] [--base-port P]
                                           serve the fake APIs the tests use (for
                                           docker-compose): redgifs, producthunt,
                                           teenquotes, generic, redbooth from port P
  authproxy version                        print the version

With no --config, authproxy serves its built-in demo: the fake APIs it
ships for its tests, on loopback, behind the proxy on 127.0.0.1:8080.
`

// Run runs the program until ctx is done and returns its exit code:
// 0 after a clean shutdown, 1 on a runtime failure, 2 on bad usage or config.
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
	cmd, args := "serve", opts.Args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("authproxy "+cmd, flag.ContinueOnError)
	fs.SetOutput(opts.Stderr)
	fs.Usage = func() { fmt.Fprint(opts.Stderr, usage, "\nFlags:\n"); fs.PrintDefaults() }
	configPath := fs.String("config", os.Getenv("AUTHPROXY_CONFIG"), "config file (env AUTHPROXY_CONFIG); none: the built-in demo")
	noBrowser := fs.Bool("no-browser", false, "login: only print the URL, do not try to open a browser")
	loginListen := fs.String("listen", "", "login: where to listen for the browser's redirect (default: redirect_uri's host:port); in a container 0.0.0.0:PORT, with the port published")
	show := fs.Bool("show", false, "token: print the access token itself")
	fakeHost := fs.String("host", "127.0.0.1", "fakeapis: the address to serve on")
	fakePort := fs.Int("base-port", 9101, "fakeapis: the first port; one per API (0: any free ports)")
	healthURL := fs.String("url", "", "health: the /healthz URL (default: from the config's admin.listen, else 127.0.0.1:9090)")
	var upstreamName string // login and token take one before the flags
	if (cmd == "login" || cmd == "token") && len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		upstreamName, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(opts.Stderr, "authproxy %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	switch cmd {
	case "serve":
		return serve(ctx, *configPath, opts)
	case "check":
		return check(*configPath, opts)
	case "login":
		if upstreamName == "" {
			fmt.Fprintln(opts.Stderr, "authproxy login: name the upstream: authproxy login NAME --config FILE")
			return 2
		}
		return login(ctx, upstreamName, *configPath, !*noBrowser, *loginListen, opts)
	case "health":
		return health(ctx, *configPath, *healthURL, opts)
	case "token":
		return token(ctx, upstreamName, *configPath, *show, opts)
	case "fakeapis":
		return fakeapis(ctx, *fakeHost, *fakePort, opts)
	case "version":
		fmt.Fprintln(opts.Stdout, "authproxy", Version)
		return 0
	case "help":
		fs.Usage()
		return 0
	default:
		fmt.Fprintf(opts.Stderr, "authproxy: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
