package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/integration/fakeapi"
)

func runCLI(args ...string) (int, string, string) {
	var out, errOut syncBuffer
	code := app.Run(context.Background(), app.Options{Args: args, Stdout: &out, Stderr: &errOut,
		LookupEnv: func(string) (string, bool) { return "", false }})
	return code, out.String(), errOut.String()
}

func TestHealthCommand(t *testing.T) {
	e := start(t, fakeapi.RedGIFs(), setup{})
	if code, out, errOut := runCLI("health", "--url", e.admin+"/healthz"); code != 0 || !strings.Contains(out, "healthy") {
		t.Errorf("running proxy: exit %d %s %s", code, out, errOut)
	}
	e.stop()
	if code, _, errOut := runCLI("health", "--url", e.admin+"/healthz"); code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("stopped proxy: exit %d %s", code, errOut)
	}
}

func TestTokenCommandShowsTheTokenOnlyWhenAsked(t *testing.T) {
	f := fakeapi.TeenQuotes()
	e := start(t, f, setup{})
	code, out, errOut := runCLI("token", "teenquotes", "--config", e.config)
	if code != 0 || !strings.Contains(out, `"token_type": "Bearer"`) || !strings.Contains(out, `"expires_at"`) {
		t.Fatalf("exit %d %s %s", code, out, errOut)
	}
	e.assertNoSecretsIn("token's output without --show", out+errOut)
	code, out, _ = runCLI("token", "teenquotes", "--config", e.config, "--show")
	if code != 0 || !strings.Contains(out, `"access_token": "teenquotes-`) {
		t.Errorf("--show: exit %d %s", code, out)
	}
	if code, _, errOut := runCLI("token", "nope", "--config", e.config); code != 2 || !strings.Contains(errOut, `no upstream "nope"`) {
		t.Errorf("unknown upstream: %d %s", code, errOut)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "login", "health", "token", "version"} {
		code, _, errOut := runCLI(cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "-config") {
			t.Errorf("%s --help: exit %d %s", cmd, code, errOut)
		}
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "authproxy ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// A newcomer's first check: proxy.yaml with none of its eight variables
// set. Each is one problem, said once, naming the key and the variable.
func TestCheckReportsEachMissingVariableOnce(t *testing.T) {
	code, out, errOut := runCLI("check", "--config", "../proxy.yaml")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 2 || out != "" || len(lines) != 9 || !strings.HasSuffix(lines[0], "8 problems:") {
		t.Fatalf("exit %d, %d lines:\n%s%s", code, len(lines), out, errOut)
	}
	for _, api := range []string{"redgifs", "producthunt", "teenquotes", "redbooth"} {
		for _, key := range []string{"client_id", "client_secret"} {
			want := "upstreams." + api + ".token." + key + ": environment variable " + strings.ToUpper(api+"_"+key) + " is not set"
			if strings.Count(errOut, "upstreams."+api+".token."+key+":") != 1 || !strings.Contains(errOut, want) {
				t.Errorf("does not say once %q:\n%s", want, errOut)
			}
		}
	}
}
