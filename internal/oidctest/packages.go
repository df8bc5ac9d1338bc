package oidctest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/internal/skipreport"
)

// InstallCommand installs the server's npm packages; .ci/run runs it, and
// Start runs it itself when they are missing.
const InstallCommand = "npm ci --no-audit --no-fund --prefix internal/oidctest"

const requireEnv = "AUTHPROXY_REQUIRE_OIDC"

// skipOrFail skips t, counting it under reason (what is missing, for the
// package's summary line: see skipreport), or fails it when requireEnv is
// set.
func skipOrFail(t testing.TB, reason, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireEnv) != "" {
		t.Fatalf(format+" (and "+requireEnv+" is set, so this fails instead of skipping)", args...)
	}
	skipreport.Skip(t, reason, fmt.Sprintf(format, args...))
}

func requireNode(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not installed (install Node.js 20.19 or later and npm)", "node is not installed, so the oidc-provider tests cannot run; install Node.js 20.19 or later and npm, as .ci/run does")
	}
	nodeVersion.once.Do(func() {
		out, err := exec.Command(node, "--version").Output()
		nodeVersion.v, nodeVersion.err = strings.TrimSpace(string(out)), err
	})
	if nodeVersion.err != nil {
		skipOrFail(t, "node --version failed", "%s --version: %v", node, nodeVersion.err)
	}
	if !nodeSupported(nodeVersion.v) {
		skipOrFail(t, "node is older than 20.19 (install Node.js 20.19 or later)", "node %s is too old for oidc-provider 9, which needs Node.js 20.19 or later (Debian 12's nodejs package is 18)", nodeVersion.v)
	}
	return node
}

var nodeVersion struct {
	once sync.Once
	v    string
	err  error
}

// nodeSupported says whether v ("v20.20.2") meets oidc-provider 9's
// "^20.19.0 || ^22.12.0 || >= 23.0.0".
func nodeSupported(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "v%d.%d", &major, &minor); err != nil {
		return false
	}
	switch {
	case major == 20:
		return minor >= 19
	case major == 22:
		return minor >= 12
	default:
		return major >= 23
	}
}

// sourceDir is this package's directory, where server.mjs, package.json
// and node_modules live.
func sourceDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("oidctest: cannot find its own source directory")
	}
	return filepath.Dir(file)
}

// ensurePackages runs `npm ci` when node_modules lacks the oidc-provider
// version that package.json pins. Test binaries of several packages run
// at once, so an exclusive lock on a file beside package.json lets one
// install while the others wait for it.
//
// The check itself is made under the lock: npm writes oidc-provider's
// package.json before the rest of the tree, and a server started from a
// half-installed tree hangs instead of failing.
func ensurePackages(t testing.TB, dir string) {
	t.Helper()
	unlock, err := lockFile(filepath.Join(dir, ".npm-ci.lock"))
	if err != nil {
		t.Fatalf("oidctest: lock for npm ci: %v", err)
	}
	defer unlock()
	if installed(dir) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skipOrFail(t, "npm is not installed (install npm)", "the oidc-provider npm packages are not installed and npm is missing; install npm and run: %s", InstallCommand)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		skipOrFail(t, "npm ci failed (it needs the npm registry or its cache; run: "+InstallCommand+")", "npm ci in %s failed (%v); run by hand: %s\n%s", dir, err, InstallCommand, out.String())
	}
	if !installed(dir) {
		t.Fatalf("oidctest: npm ci succeeded but node_modules/oidc-provider is not the pinned version\n%s", out.String())
	}
}

func installed(dir string) bool {
	var want, have struct {
		Version      string
		Dependencies map[string]string
	}
	if readJSON(filepath.Join(dir, "package.json"), &want) != nil {
		return false
	}
	if readJSON(filepath.Join(dir, "node_modules", "oidc-provider", "package.json"), &have) != nil {
		return false
	}
	return have.Version != "" && have.Version == want.Dependencies["oidc-provider"]
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
