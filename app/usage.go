package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/authproxy/authproxy/internal/spelling"
)

// What the command line writes when it is asked for help or used wrongly.

// helpCommand is in the table like the others, so that it is listed and
// answers --help, and `help help`, as they do. init adds it: what it runs
// reads the table, which the table's own initializer may not refer to.
var helpCommand = command{
	name: "help", args: "[COMMAND]", operand: commandName,
	summary: "print this, or a command's flags and an example",
	about: `Print the list of commands or, given a command, its synopsis, flags
and an example, as "authproxy COMMAND --help" does.`,
	example: "authproxy help login",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		return func(ctx context.Context, name string) error {
			if name == "" {
				writeUsage(opts.Stdout)
				return nil
			}
			opts.Args = []string{name, "--help"}
			return runCommand(ctx, opts)
		}
	},
}

func init() { commands = append(commands, helpCommand) }

// flagError is what a usage error says of err, flag's error parsing the
// command's flags: a flag the command does not have is named with the
// one it likely is, or with those it has.
func flagError(prog string, fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err.Error() // invalid value "x" for flag -base-port: want a port, 0 to 65535
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	switch near := closestName(name, names); {
	case near != "":
		return fmt.Sprintf("%s: unknown flag --%s; did you mean --%s?", prog, name, near)
	case len(names) == 0:
		return fmt.Sprintf("%s: unknown flag --%s; it takes none", prog, name)
	}
	return fmt.Sprintf("%s: unknown flag --%s; its flags: --%s", prog, name, strings.Join(names, ", --"))
}

// closestName is the one of names nearest to name, if it is near enough
// to be the likely intent: at most a third of it differs.
func closestName(name string, names []string) string {
	best, bestDist := "", len(name)/3+1
	for _, n := range names {
		if d := spelling.Distance(name, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// helpFor is the help a usage error shows: the command's own, or the
// list of commands when none was named.
func helpFor(cmd *command, named bool, fs *flag.FlagSet) func(io.Writer) {
	if !named {
		return writeUsage
	}
	return func(w io.Writer) { cmd.writeHelp(w, fs) }
}

// usageError writes the message (if any) and the help (nil: the list of
// commands) to stderr, and returns the message as a refusal (exit 2)
// that is said already.
func usageError(opts Options, help func(io.Writer), format string, args ...any) error {
	if format != "" {
		fmt.Fprintf(opts.Stderr, format+"\n\n", args...)
	}
	if help == nil {
		help = writeUsage
	}
	help(opts.Stderr)
	return said(refusef(format, args...))
}

func writeUsage(w io.Writer) {
	fmt.Fprint(w, "authproxy: an authenticating reverse proxy for OAuth2 APIs\n\nUsage:\n")
	for _, c := range commands {
		synopsis := "authproxy " + c.name
		if c.name == "serve" {
			synopsis = "authproxy [serve]"
		}
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(synopsis+" "+c.args), c.summary)
	}
	fmt.Fprint(w, `
With no --config, authproxy serves its built-in demo: the fake APIs it
ships for its tests, on loopback, behind the proxy on 127.0.0.1:8080.
Run "authproxy COMMAND --help" for a command's flags and an example.
`)
}

// writeHelp writes the command's synopsis, what it does, its flags and
// an example.
func (c *command) writeHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("authproxy "+c.name+" "+c.args), c.about)
	hasFlags := false
	fs.VisitAll(func(f *flag.Flag) {
		if !hasFlags {
			fmt.Fprint(w, "\nFlags:\n")
			hasFlags = true
		}
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" && arg != "value" {
			line += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
	fmt.Fprintf(w, "\nExample:\n  %s\n", c.example)
}
