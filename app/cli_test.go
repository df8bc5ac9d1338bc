package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/syncbuf"
)

// runCLI runs the program as `authproxy args...` would, in the process's
// environment (as config reads the AUTHPROXY_* overrides there), with no
// AUTHPROXY_CONFIG to stand in for a --config the test leaves out.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("AUTHPROXY_CONFIG", "")
	var out, errOut syncbuf.Buffer
	code = Run(context.Background(), Options{Args: args, Stdout: &out, Stderr: &errOut})
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

// An upstream the config does not have is the same mistake in login and
// token, told the same way, with exit 2; so is one that login cannot log
// in to.
func TestUpstreamTheConfigDoesNotHave(t *testing.T) {
	path := writeConfig(t, `
store: {type: memory}
upstreams:
  redbooth:
    target: http://127.0.0.1:1
    token: {grant_type: refresh_token, url: http://127.0.0.1:1/token, authorize_url: http://127.0.0.1:1/authorize, client_id: c, client_secret: s}
  redgifs:
    target: http://127.0.0.1:1
    token: {url: http://127.0.0.1:1/token, client_id: c, client_secret: s}
`)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"login", "nosuch", "--config", path, "--no-browser"}, `authproxy login: no upstream "nosuch" in ` + path + "; its upstreams: redbooth, redgifs\n"},
		{[]string{"token", "nosuch", "--config", path}, `authproxy token: no upstream "nosuch" in ` + path + "; its upstreams: redbooth, redgifs\n"},
		{[]string{"login", "redgifs", "--config", path, "--no-browser"}, "authproxy login redgifs: upstreams.redgifs.token.grant_type is client_credentials; login is for grant_type: refresh_token\n"},
	} {
		code, out, errOut := runCLI(t, tt.args...)
		if code != 2 || out != "" || errOut != tt.says {
			t.Errorf("%q: exit %d, want 2 and %q\nstdout: %s\nstderr: %s", tt.args, code, tt.says, out, errOut)
		}
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A flag's value that cannot be what the flag wants is a usage error when
// the flag is parsed, as a word given to a number flag is: exit 2, with
// the usage, before anything is loaded or listened on.
func TestBadFlagValueIsAUsageError(t *testing.T) {
	path := writeConfig(t, `
store: {type: memory}
upstreams:
  redbooth:
    target: http://127.0.0.1:1
    token: {grant_type: refresh_token, url: http://127.0.0.1:1/token, authorize_url: http://127.0.0.1:1/authorize, client_id: c, client_secret: s}
`)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"fakeapis", "--base-port", "x"}, `invalid value "x" for flag -base-port`},
		{[]string{"fakeapis", "--base-port", "70000"}, `invalid value "70000" for flag -base-port`},
		{[]string{"fakeapis", "--base-port", "-5"}, `invalid value "-5" for flag -base-port`},
		{[]string{"login", "redbooth", "--config", path, "--no-browser", "--listen", "bogus"}, `invalid value "bogus" for flag -listen`},
		{[]string{"login", "redbooth", "--config", path, "--no-browser", "--listen", "127.0.0.1:99999"}, `invalid value "127.0.0.1:99999" for flag -listen`},
		{[]string{"health", "--url", "127.0.0.1:9090"}, `invalid value "127.0.0.1:9090" for flag -url`},
		{[]string{"health", "--url", ""}, `invalid value "" for flag -url`},
	} {
		code, out, errOut := runCLI(t, tt.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tt.says) || !strings.Contains(errOut, "\nUsage: authproxy "+tt.args[0]+" ") {
			t.Errorf("%q: exit %d, want 2 and %q with the usage\nstdout: %s\nstderr: %s", tt.args, code, tt.says, out, errOut)
		}
	}
}

// A flag the command does not have is named with the one it likely is,
// in the words of the other usage errors, not flag's "flag provided but
// not defined"; a config file given without --config is told to have it.
func TestUsageErrorsSayWhatToWrite(t *testing.T) {
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"check", "--cofnig", "x"}, "authproxy check: unknown flag --cofnig; did you mean --config?\n\nUsage: authproxy check "},
		{[]string{"check", "-cofnig=x"}, "authproxy check: unknown flag --cofnig; did you mean --config?\n\nUsage: authproxy check "},
		{[]string{"login", "redbooth", "--no-browsr"}, "authproxy login: unknown flag --no-browsr; did you mean --no-browser?\n\nUsage: authproxy login "},
		{[]string{"check", "--bogus"}, "authproxy check: unknown flag --bogus; its flags: --config\n\nUsage: authproxy check "},
		{[]string{"version", "--bogus"}, "authproxy version: unknown flag --bogus; it takes none\n\nUsage: authproxy version"},
		{[]string{"--confg", "x"}, "authproxy: unknown flag --confg; did you mean --config?\n\nauthproxy: an authenticating"},
		{[]string{"check", "proxy.yaml"}, "authproxy check: unexpected argument \"proxy.yaml\"; write --config proxy.yaml\n\nUsage: authproxy check "},
		{[]string{"token", "redgifs", "proxy.yaml"}, "authproxy token: unexpected argument \"proxy.yaml\"; write --config proxy.yaml\n\nUsage: authproxy token "},
		{[]string{"proxy.yaml"}, `authproxy: unknown command "proxy.yaml"; to serve it, write --config proxy.yaml`},
		// With --config given, an argument is only that.
		{[]string{"check", "--config", "x", "extra"}, "authproxy check: unexpected argument \"extra\"\n\nUsage: authproxy check "},
	} {
		code, out, errOut := runCLI(t, tt.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tt.says) {
			t.Errorf("%q: exit %d, want 2 and %q\nstdout: %s\nstderr: %s", tt.args, code, tt.says, out, errOut)
		}
	}
}

// --version and -v print the version, as `authproxy version` does.
func TestVersionFlags(t *testing.T) {
	_, want, _ := runCLI(t, "version")
	for _, args := range [][]string{{"--version"}, {"-version"}, {"-v"}, {"--v"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || errOut != "" || out != want || !strings.HasPrefix(out, "authproxy ") {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
}

// AUTHPROXY_CONFIG is read from the environment the options give, not
// the process's: check finds its config there, with the process's empty.
func TestConfigFromTheOptionsEnvironment(t *testing.T) {
	t.Setenv("AUTHPROXY_CONFIG", "")
	path := writeConfig(t, `
store: {type: memory}
upstreams:
  redgifs:
    target: http://127.0.0.1:1
    token: {url: http://127.0.0.1:1/token, client_id: c, client_secret: s}
`)
	env := map[string]string{"AUTHPROXY_CONFIG": path}
	var out, errOut syncbuf.Buffer
	code := Run(context.Background(), Options{Args: []string{"check"}, Stdout: &out, Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if want := path + ": OK, 1 upstream(s)\n"; code != 0 || out.String() != want {
		t.Errorf("exit %d, stdout %q, want 0 and %q\nstderr: %s", code, out.String(), want, errOut.String())
	}
	// The AUTHPROXY_* overrides too: the options' environment has one the
	// process has not, and a process's one is not the program's.
	t.Setenv("AUTHPROXY_LOG_LEVEL", "loud")
	env["AUTHPROXY_LISTEN"] = "x"
	errOut = syncbuf.Buffer{}
	code = Run(context.Background(), Options{Args: []string{"check"}, Stdout: &out, Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	want := "config " + path + ": 1 problem:\n" +
		`  listen (from AUTHPROXY_LISTEN): "x" is not host:port; write e.g. 127.0.0.1:8080, or :8080 for every interface` + "\n"
	if code != 2 || errOut.String() != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, errOut.String(), want)
	}
}
