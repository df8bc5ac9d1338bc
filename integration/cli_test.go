package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

func runCLI(args ...string) (int, string, string) {
	return runCLIWithEnv(func(string) (string, bool) { return "", false }, args...)
}

// runCLIWithEnv runs the command line with env as the program's
// environment.
func runCLIWithEnv(env func(string) (string, bool), args ...string) (int, string, string) {
	var out, errOut syncbuf.Buffer
	code := app.Run(context.Background(), app.Options{Args: args, Stdout: &out, Stderr: &errOut, LookupEnv: env})
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

// Help that was asked for goes to stdout with exit 0; each command's shows
// its own synopsis, only its own flags, and an example.
func TestEveryCommandHasHelp(t *testing.T) {
	flags := map[string][]string{
		"serve": {"config"}, "check": {"config"}, "login": {"config", "no-browser"}, "health": {"config", "url"},
		"token": {"config", "show"}, "fakeapis": {"host", "base-port", "tls-ca"}, "version": {},
	}
	every := []string{"config", "no-browser", "url", "show", "host", "base-port", "tls-ca"}
	for cmd, own := range flags {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			code, out, errOut := runCLI(args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: authproxy "+cmd) || !strings.Contains(out, "\nExample:\n  authproxy "+cmd) {
				t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
				continue
			}
			for _, f := range every {
				if regexp.MustCompile(`(?m)^  --`+f+`( |$)`).MatchString(out) != slices.Contains(own, f) {
					t.Errorf("%q: flag %s shown: %v, want %v:\n%s", args, f, !slices.Contains(own, f), slices.Contains(own, f), out)
				}
			}
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage:") || !strings.Contains(out, "authproxy check --config FILE") {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "authproxy ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// A usage error says what is wrong and how to call the command, on
// stderr, with exit 2.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"check", "--bogus"}, "authproxy check: unknown flag --bogus; its flags: --config"},
		{[]string{"check", "--show"}, "authproxy check: unknown flag --show; its flags: --config"},
		{[]string{"check", "--config", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"login", "--config", "x"}, "name the upstream"},
		{[]string{"token"}, "name the upstream"},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"--bogus"}, "authproxy: unknown flag --bogus; its flags: --config"},
	} {
		code, out, errOut := runCLI(tt.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tt.says) || !strings.Contains(errOut, "Usage:") {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", tt.args, code, out, errOut)
		}
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

// The validation example of docs/configuration.md is what check prints
// for its proxy.yaml, line for line, with no variable set.
func TestCheckPrintsTheDocumentedValidationExample(t *testing.T) {
	readme, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(readme), "**Validation.**")
	if !ok {
		t.Fatal("docs/configuration.md has no **Validation.** paragraph")
	}
	blocks := regexp.MustCompile("(?s)```(yaml)?\n(.*?)```").FindAllStringSubmatch(example, 2)
	if len(blocks) != 2 || blocks[0][1] != "yaml" || blocks[1][1] != "" {
		t.Fatalf("the paragraph does not go on with a yaml block and the output: %q", blocks)
	}
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(blocks[0][2]), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check", "--config", path)
	if got, want := strings.ReplaceAll(errOut, path, "proxy.yaml"), blocks[1][2]; code != 2 || out != "" || got != want {
		t.Errorf("exit %d, stdout %q; check prints\n%s\ndocs/configuration.md shows\n%s", code, out, got, want)
	}
}

// check reports at once what config finds and what only auth can say (a
// client_secret_jwt secret too short for HS256), for every upstream whose
// section config found nothing wrong in; before, the short secret came up
// only once the other problems were fixed.
func TestCheckReportsCredentialProblemsWithTheOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(path, []byte(`upstreams:
  one:
    target: ftp://api.example.com
    token:
      url: https://idp.example.com/token
      client_id: c
      client_secret: s
      timeout: 0s
  two:
    target: https://api2.example.com
    token:
      url: https://idp.example.com/token
      client_id: c
      auth_method: client_secret_jwt
      client_secret: ShortS3cretABC
  three:
    target: https://api3.example.com
    token:
      url: https://idp.example.com/token
      client_id: c
      auth_method: client_secret_jwt
      client_secret: ShortS3cretABC
      signing_alg: RS256
`), 0o600)
	code, out, errOut := runCLI("check", "--config", path)
	// three's signing_alg is config's problem; auth would say it again,
	// of the client secret, and is not asked.
	want := "config " + path + `: 4 problems:
  upstreams.one.target: "ftp://api.example.com" is not an absolute http(s) URL; write e.g. https://api.example.com
  upstreams.one.token.timeout: must be more than 0; write e.g. 10s
  upstreams.three.token.signing_alg: client_secret_jwt signs with the client secret: write HS256 (the default), HS384 or HS512
  upstreams.two.token.client_secret: the client secret is 14 bytes; HS256 needs 32 or more (RFC 7518 3.2): ask the provider for a longer secret, or use private_key_jwt
`
	if code != 2 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, out, errOut, want)
	}
	if strings.Contains(errOut, "ShortS3cretABC") {
		t.Error("check shows the client secret")
	}
}

// serve refuses what check refuses, and names the key as check does: the
// proxy meets the short secret as auth says it ("client assertion: the
// client secret is 14 bytes"), which knows nothing of proxy.yaml. So does
// a reload.
func TestServeNamesTheKeyOfAnUnusableCredential(t *testing.T) {
	const short = "      auth_method: client_secret_jwt\n      client_secret: ShortS3cretABC\n"
	const want = "upstreams.two.token.client_secret: the client secret is 14 bytes; HS256 needs 32 or more"
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(path, []byte(realIdPConfig("")+upstream("two", "http://127.0.0.1:1", "http://127.0.0.1:1/token", "      client_id: c\n"+short)), 0o600)
	logs := &syncbuf.Buffer{}
	code := app.Run(context.Background(), app.Options{Args: []string{"--config", path}, Stdout: logs, Stderr: logs,
		LookupEnv: func(string) (string, bool) { return "", false }})
	if code != 2 || !strings.Contains(logs.String(), "cannot build the proxy") || !strings.Contains(logs.String(), want) {
		t.Errorf("serve: exit %d, the log does not say %q:\n%s", code, want, logs)
	}

	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.rewriteConfig(func(c string) string {
		return c + upstream("two", "http://127.0.0.1:1", "http://127.0.0.1:1/token", "      client_id: c\n"+short)
	})
	e.waitForLog(`"msg":"config reload rejected; the running config stays"`, 1)
	if !strings.Contains(e.logs.String(), want) {
		t.Errorf("the reload's rejection does not say %q:\n%s", want, e.logs)
	}
	for _, l := range []string{logs.String(), e.logs.String()} {
		if strings.Contains(l, "ShortS3cretABC") {
			t.Error("the log shows the client secret")
		}
	}
}

// A problem with a value that an AUTHPROXY_ variable set names the
// variable: the file says otherwise. check and serve say it alike, for
// config's problems and for the credentials only auth can judge.
func TestAProblemFromAnOverrideNamesTheVariable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(path, []byte(realIdPConfig("")+upstream("two", "http://127.0.0.1:1", "http://127.0.0.1:1/token",
		"      client_id: c\n      auth_method: client_secret_jwt\n      client_secret: a-file-secret-of-32-bytes-or-more\n")), 0o600)
	t.Setenv("AUTHPROXY_LISTEN", "x")
	code, _, errOut := runCLIWithEnv(os.LookupEnv, "check", "--config", path)
	want := "config " + path + ": 1 problem:\n" +
		`  listen (from AUTHPROXY_LISTEN): "x" is not host:port; write e.g. 127.0.0.1:8080, or :8080 for every interface` + "\n"
	if code != 2 || errOut != want {
		t.Errorf("exit %d:\n%s\nwant\n%s", code, errOut, want)
	}

	t.Setenv("AUTHPROXY_LISTEN", "127.0.0.1:0")
	t.Setenv("AUTHPROXY_UPSTREAMS_TWO_TOKEN_CLIENT_SECRET", "ShortS3cretABC")
	const says = "upstreams.two.token.client_secret (from AUTHPROXY_UPSTREAMS_TWO_TOKEN_CLIENT_SECRET): the client secret is 14 bytes"
	code, _, checkOut := runCLIWithEnv(os.LookupEnv, "check", "--config", path)
	if code != 2 || !strings.Contains(checkOut, says) {
		t.Errorf("check: exit %d, does not say %q:\n%s", code, says, checkOut)
	}
	logs := &syncbuf.Buffer{}
	// The overrides are the program's environment, read through LookupEnv.
	code = app.Run(context.Background(), app.Options{Args: []string{"--config", path}, Stdout: logs, Stderr: logs,
		LookupEnv: os.LookupEnv})
	if code != 2 || !strings.Contains(logs.String(), says) {
		t.Errorf("serve: exit %d, does not say %q:\n%s", code, says, logs)
	}
	if strings.Contains(checkOut+logs.String(), "ShortS3cretABC") {
		t.Error("the secret is shown")
	}
}
