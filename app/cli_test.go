package app

import (
	"context"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/syncbuf"
)

// runCLI runs the program as `authproxy args...` would, with no
// AUTHPROXY_CONFIG to stand in for a --config the test leaves out.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("AUTHPROXY_CONFIG", "")
	var out, errOut syncbuf.Buffer
	code = Run(context.Background(), Options{Args: args, Stdout: &out, Stderr: &errOut,
		LookupEnv: func(string) (string, bool) { return "", false }})
	return code, out.String(), errOut.String()
}

// help is a listed command, so asking for its help is asking for help:
// stdout, exit 0, as for every other command.
func TestHelpHasHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "help"}, {"help", "--help"}, {"help", "-h"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: authproxy help [COMMAND]") || !strings.Contains(out, "\nExample:\n  authproxy help ") {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
}

// Leaving out --config is the same mistake in every command that needs
// it, and is told the same way: a usage error, with the command's usage,
// exit 2.
func TestMissingConfigIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{"check"}, {"login", "redbooth"}, {"token", "redbooth"}, {"token", "redbooth", "--show"}} {
		code, out, errOut := runCLI(t, args...)
		want := "authproxy " + args[0] + ": give the config with --config FILE (or AUTHPROXY_CONFIG)"
		if code != 2 || out != "" || !strings.HasPrefix(errOut, want+"\n") || !strings.Contains(errOut, "\nUsage: authproxy "+args[0]+" ") {
			t.Errorf("%q: exit %d, want 2 and %q with the usage\nstdout: %s\nstderr: %s", args, code, want, out, errOut)
		}
	}
}
