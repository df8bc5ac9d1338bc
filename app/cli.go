package app

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/config"
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
	// once they are parsed, with the operand ("" if none was given); what
	// that returns, exit turns into the exit code.
	flags func(fs *flag.FlagSet, opts Options) func(ctx context.Context, operand string) error
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

// commands are the subcommands, in the order the usage lists them; each
// is defined in the file of its name (serve.go, check.go, ...), help in
// usage.go.
var commands = []command{serveCommand, checkCommand, loginCommand, healthCommand, tokenCommand, fakeapisCommand, caCommand, versionCommand}

// configFlag defines --config, which every command that reads the config
// takes, defaulting to $AUTHPROXY_CONFIG.
func configFlag(fs *flag.FlagSet, opts Options, more string) *string {
	return fs.String("config", opts.getenv("AUTHPROXY_CONFIG"), "the config `FILE` (env AUTHPROXY_CONFIG)"+more)
}

// loadUpstream loads the config for a command that acts on one upstream
// (login, token) and finds the upstream it was asked about, or says why
// not. A config that does not load and a name it does not have are
// mistakes in what was asked, not failures of what was tried: refusals
// (exit 2), in the same words whichever command met them.
func loadUpstream(cmd, name, path string, opts Options) (*config.Config, *config.Upstream, error) {
	cfg, err := config.Load(path, opts.config())
	if err != nil {
		return nil, nil, refuse(err)
	}
	names := make([]string, len(cfg.Upstreams))
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].Name == name {
			return cfg, &cfg.Upstreams[i], nil
		}
		names[i] = cfg.Upstreams[i].Name
	}
	return nil, nil, refusef("authproxy %s: no upstream %q in %s; its upstreams: %s", cmd, name, path, strings.Join(names, ", "))
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
// that was asked for goes to stdout (nil: exit 0); a usage error, with the
// usage, to stderr (a refusal, said: exit 2).
func runCommand(ctx context.Context, opts Options) error {
	name, args, named := pickCommand(opts.Args)
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
	operand, args := cmd.operandBefore(args)
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
		return nil
	}
	operand, rest := cmd.operandAfter(operand, fs.Args())
	if err := cmd.checkArgs(opts, prog, named, fs, operand, rest); err != nil {
		return err
	}
	return run(ctx, operand)
}

// pickCommand is the command the arguments name, and the arguments after
// it: serve if none is named, version for --version; named says whether
// one was.
func pickCommand(args []string) (name string, rest []string, named bool) {
	switch {
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		return args[0], args[1:], true
	case len(args) > 0 && versionFlags[args[0]]:
		return "version", args[1:], true
	}
	return "serve", args, false
}

// operandBefore takes the operand given before the flags, if the command
// has one and it is there: "login NAME --config FILE".
func (c *command) operandBefore(args []string) (operand string, rest []string) {
	if c.operand != noOperand && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		operand, args = args[0], args[1:]
		if c.operand == verbAndDir && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			operand, args = operand+" "+args[0], args[1:]
		}
	}
	return operand, args
}

// operandAfter completes the operand from what follows the flags:
// "login --config FILE NAME", or ca's directory after its flags.
func (c *command) operandAfter(operand string, rest []string) (string, []string) {
	if c.operand != noOperand && operand == "" && len(rest) > 0 {
		operand, rest = rest[0], rest[1:]
	}
	if c.operand == verbAndDir && !strings.Contains(operand, " ") && len(rest) > 0 {
		operand, rest = operand+" "+rest[0], rest[1:]
	}
	return operand, rest
}

// checkArgs refuses, as usage errors, what is left over or missing once
// the flags are parsed: an argument too many, the operand, --config.
func (c *command) checkArgs(opts Options, prog string, named bool, fs *flag.FlagSet, operand string, rest []string) error {
	switch {
	case len(rest) > 0 && fs.Lookup("config") != nil && !isSet(fs, "config"):
		// A config file, most likely: check proxy.yaml.
		return usageError(opts, helpFor(c, named, fs), "%s: unexpected argument %q; write --config %s", prog, rest[0], rest[0])
	case len(rest) > 0:
		return usageError(opts, helpFor(c, named, fs), "%s: unexpected argument %q", prog, rest[0])
	case c.operand == verbAndDir && !strings.Contains(operand, " "):
		return usageError(opts, helpFor(c, named, fs), "%s: write authproxy %s %s", prog, c.name, c.args)
	case c.operand == upstreamName && operand == "":
		return usageError(opts, helpFor(c, named, fs), "authproxy %s: name the upstream: authproxy %s %s", c.name, c.name, c.args)
	case c.needsConfig && fs.Lookup("config").Value.String() == "":
		return usageError(opts, helpFor(c, named, fs), "authproxy %s: give the config with --config FILE (or AUTHPROXY_CONFIG)", c.name)
	}
	return nil
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
