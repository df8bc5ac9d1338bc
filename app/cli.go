package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// command is one of authproxy's subcommands. Each has its own flags, so
// that its --help shows only those.
type command struct {
	name string
	// args follow the name in the synopsis; the operand first, if any.
	args    string
	operand operand
	// needsConfig: the command cannot run without --config, and
	// runCommand refuses it for all such commands alike.
	needsConfig bool
	summary     string // for the list of commands
	about       string // for the command's own --help
	example     string
	// flags defines the command's flags on fs and returns what runs it
	// once they are parsed, with the operand ("" if none was given).
	flags func(fs *flag.FlagSet, opts Options) func(ctx context.Context, operand string) int
}

// operand is what a command takes besides its flags: one name, before
// or after them.
type operand int

const (
	noOperand    operand = iota
	upstreamName         // required: the upstream that login or token acts on
	commandName          // optional: the command that help is asked about
	verbAndDir           // required: a verb and a directory, "create DIR" (ca)
)

var commands = []command{
	{
		name: "serve", args: "[--config FILE]", summary: "run the proxy (the default command)",
		about: `Run the proxy. A change to the config file is applied without a restart,
as is SIGHUP; an invalid one is logged and the running config stays.
With no --config, serve the built-in demo: the fake APIs the tests use,
on loopback, behind the proxy on 127.0.0.1:8080.`,
		example: "authproxy serve --config proxy.yaml",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			path := configFlag(fs, opts, "; none: the built-in demo")
			return func(ctx context.Context, _ string) int { return serve(ctx, *path, opts) }
		},
	},
	{
		name: "check", args: "--config FILE", needsConfig: true, summary: "validate the config and exit",
		about: `Load the config as serve would, ${VAR}s and secret files included, parse
the private keys and certificates it names, and report every problem,
each with its key and what to write. Warn, without failing, of a key file
others can read and of a token file the platform has not written yet.
Exit 0 if there is no problem, 2 if there is.`,
		example: "authproxy check --config proxy.yaml",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			path := configFlag(fs, opts, "")
			return func(_ context.Context, _ string) int { return check(*path, opts) }
		},
	},
	{
		name: "login", args: "NAME --config FILE [--no-browser] [--listen ADDR]", operand: upstreamName, needsConfig: true,
		summary: "get the first refresh token for an upstream with grant_type: refresh_token",
		about: `Authorize the upstream NAME in a browser: print its authorize URL, wait
on its redirect_uri for the browser to come back, exchange the code and
save the refresh token in the store, where the proxy finds it. In a
container, listen on 0.0.0.0 with the port published, as the browser on
the host opens redirect_uri on 127.0.0.1.`,
		example: "authproxy login redbooth --config proxy.yaml --no-browser",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			path := configFlag(fs, opts, "")
			noBrowser := fs.Bool("no-browser", false, "only print the URL; do not try to open a browser")
			var listen hostPortFlag
			fs.Var(&listen, "listen", "the `ADDR`, host:port, to listen on for the browser's redirect (default: redirect_uri's host:port); in a container 0.0.0.0:PORT, with the port published")
			return func(ctx context.Context, name string) int {
				return login(ctx, name, *path, !*noBrowser, string(listen), opts)
			}
		},
	},
	{
		name: "health", args: "[--config FILE | --url URL]",
		summary: "exit 0 if a running proxy's /healthz answers 200 (a HEALTHCHECK without a shell)",
		about: `Ask a running proxy whether it is up: exit 0 if its /healthz answers
200, 1 if not. The address is --url, else admin.listen as serve reads it:
AUTHPROXY_ADMIN_LISTEN over the config's, whose default is 127.0.0.1:9090
(with no --config, the demo's). Only admin.listen is read from the file,
so a bad edit elsewhere, which a reload refuses while the proxy goes on,
does not fail the check. Exit 2 if admin.listen is off or no address.`,
		example: "authproxy health --url http://127.0.0.1:9090/healthz",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			path := configFlag(fs, opts, "; its admin.listen gives the address")
			var url httpURLFlag
			fs.Var(&url, "url", "the `URL` of /healthz (default: from admin.listen, else http://127.0.0.1:9090/healthz)")
			return func(ctx context.Context, _ string) int { return health(ctx, *path, string(url), opts) }
		},
	},
	{
		name: "token", args: "NAME --config FILE [--show]", operand: upstreamName, needsConfig: true,
		summary: "get an upstream's token and print its status; the token itself only with --show",
		about: `Get the upstream NAME's token as the proxy would and print its type and
expiry as JSON. Which token that is depends on the grant and the store:
  grant_type: refresh_token: the access token in the store while it is
    valid (one due for refresh is printed, and a new one stored for the
    next run); else one got with the stored refresh token, or the
    config's refresh_token, whose successor is stored.
  every other grant: a new token from the token endpoint, on every run;
    it is not stored, and a running serve does not see it and keeps its
    own.
With store.type: redis, every grant shares the replicas' token: the one
there while it is not due for refresh, else a new one, put there for
them. With store.type: memory, nothing outlives the run.`,
		example: "authproxy token redgifs --config proxy.yaml",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			path := configFlag(fs, opts, "")
			show := fs.Bool("show", false, "print the access token itself")
			return func(ctx context.Context, name string) int { return token(ctx, name, *path, *show, opts) }
		},
	},
	{
		name: "fakeapis", args: "[--host H] [--base-port P] [--tls-ca DIR]",
		summary: "serve the fake APIs the tests use (for docker-compose)",
		about: `Serve the fake APIs the tests use, one port each from --base-port on:
redgifs, producthunt, teenquotes, generic, redbooth. Their client is
demo-client, its secret demo-secret. With --tls-ca DIR (a CA as
authproxy ca create writes it), they speak HTTPS, with a certificate from
that CA for the name a client calls them by.`,
		example: "authproxy fakeapis --host 0.0.0.0 --base-port 9101",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			host := fs.String("host", "127.0.0.1", "the `address` to serve on")
			port := portFlag(9101)
			fs.Var(&port, "base-port", "the first `port`; one per API (0: any free ports)")
			tlsCA := fs.String("tls-ca", "", "serve HTTPS with certificates from the CA in `DIR` (ca.pem, ca-key.pem)")
			return func(ctx context.Context, _ string) int { return fakeapis(ctx, *host, int(port), *tlsCA, opts) }
		},
	},
	caCommand,
	{
		name: "version", summary: "print the version", about: "Print the version.", example: "authproxy version",
		flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
			return func(context.Context, string) int { fmt.Fprintln(opts.Stdout, "authproxy", Version); return 0 }
		},
	},
}

// helpCommand is in the table like the others, so that it is listed and
// answers --help, and `help help`, as they do. init adds it: what it runs
// reads the table, which the table's own initializer may not refer to.
var helpCommand = command{
	name: "help", args: "[COMMAND]", operand: commandName,
	summary: "print this, or a command's flags and an example",
	about: `Print the list of commands or, given a command, its synopsis, flags
and an example, as "authproxy COMMAND --help" does.`,
	example: "authproxy help login",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) int {
		return func(ctx context.Context, name string) int {
			if name == "" {
				writeUsage(opts.Stdout)
				return 0
			}
			opts.Args = []string{name, "--help"}
			return runCommand(ctx, opts)
		}
	},
}

func init() { commands = append(commands, helpCommand) }

// configFlag defines --config, which every command that reads the config
// takes, defaulting to $AUTHPROXY_CONFIG.
func configFlag(fs *flag.FlagSet, opts Options, more string) *string {
	return fs.String("config", opts.getenv("AUTHPROXY_CONFIG"), "the config `FILE` (env AUTHPROXY_CONFIG)"+more)
}

// The flag types below check a value when the flag is parsed, so that one
// that cannot be what the flag wants is a usage error (exit 2, with the
// usage), as a word given to a number flag is, and not a failure met
// later, after a config was loaded or a port listened on.

// hostPortFlag is an address to listen on: host:port, the port a number.
type hostPortFlag string

func (f *hostPortFlag) String() string { return string(*f) }

func (f *hostPortFlag) Set(s string) error {
	if _, port, err := net.SplitHostPort(s); err != nil || !isPort(port) {
		return errors.New("want host:port, e.g. 0.0.0.0:8085")
	}
	*f = hostPortFlag(s)
	return nil
}

// portFlag is a TCP port number, 0 included.
type portFlag int

func (f *portFlag) String() string { return strconv.Itoa(int(*f)) }

func (f *portFlag) Set(s string) error {
	if !isPort(s) {
		return errors.New("want a port, 0 to 65535")
	}
	p, _ := strconv.Atoi(s)
	*f = portFlag(p)
	return nil
}

func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// httpURLFlag is an absolute http or https URL.
type httpURLFlag string

func (f *httpURLFlag) String() string { return string(*f) }

func (f *httpURLFlag) Set(s string) error {
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http or https URL, e.g. http://127.0.0.1:9090/healthz")
	}
	*f = httpURLFlag(s)
	return nil
}

// runCommand parses the command line and runs the command it names. Help
// that was asked for goes to stdout with exit 0; a usage error, with the
// usage, to stderr with exit 2.
func runCommand(ctx context.Context, opts Options) int {
	args := opts.Args
	named := len(args) > 0 && !strings.HasPrefix(args[0], "-")
	name := "serve"
	switch {
	case named:
		name, args = args[0], args[1:]
	case len(args) > 0 && versionFlags[args[0]]:
		name, args, named = "version", args[1:], true
	}
	cmd := findCommand(name)
	if cmd == nil {
		if strings.ContainsAny(name, "./") { // a config file, as no command is named
			return usageError(opts, nil, "authproxy: unknown command %q; to serve it, write --config %s", name, name)
		}
		return usageError(opts, nil, "authproxy: unknown command %q", name)
	}
	fs := flag.NewFlagSet("authproxy "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // flag's own error messages: see flagError
	fs.Usage = func() {}     // the help is written below, to stdout or stderr
	run := cmd.flags(fs, opts)
	var operand string
	if cmd.operand != noOperand && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		operand, args = args[0], args[1:]
		if cmd.operand == verbAndDir && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			operand, args = operand+" "+args[0], args[1:]
		}
	}
	prog := "authproxy"
	if named {
		prog += " " + cmd.name
	}
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			return usageError(opts, helpFor(cmd, named, fs), "%s", flagError(prog, fs, err))
		}
		if named {
			cmd.writeHelp(opts.Stdout, fs)
		} else {
			writeUsage(opts.Stdout)
		}
		return 0
	}
	rest := fs.Args()
	if cmd.operand != noOperand && operand == "" && len(rest) > 0 {
		operand, rest = rest[0], rest[1:]
	}
	if cmd.operand == verbAndDir && !strings.Contains(operand, " ") && len(rest) > 0 {
		operand, rest = operand+" "+rest[0], rest[1:]
	}
	switch {
	case len(rest) > 0 && fs.Lookup("config") != nil && !isSet(fs, "config"):
		// A config file, most likely: check proxy.yaml.
		return usageError(opts, helpFor(cmd, named, fs), "%s: unexpected argument %q; write --config %s", prog, rest[0], rest[0])
	case len(rest) > 0:
		return usageError(opts, helpFor(cmd, named, fs), "%s: unexpected argument %q", prog, rest[0])
	case cmd.operand == verbAndDir && !strings.Contains(operand, " "):
		return usageError(opts, helpFor(cmd, named, fs), "%s: write authproxy %s %s", prog, cmd.name, cmd.args)
	case cmd.operand == upstreamName && operand == "":
		return usageError(opts, helpFor(cmd, named, fs), "authproxy %s: name the upstream: authproxy %s %s", cmd.name, cmd.name, cmd.args)
	case cmd.needsConfig && fs.Lookup("config").Value.String() == "":
		return usageError(opts, helpFor(cmd, named, fs), "authproxy %s: give the config with --config FILE (or AUTHPROXY_CONFIG)", cmd.name)
	}
	return run(ctx, operand)
}

// versionFlags ask for the version when no command is named, as
// `authproxy version` does.
var versionFlags = map[string]bool{"-v": true, "--v": true, "-version": true, "--version": true}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}
