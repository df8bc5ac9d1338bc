package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helmModule is the Helm the tests run, built from its Go module so that
// nothing but Go is needed: the version is pinned here.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.2"

var (
	// chartDir is the chart, examples the documented values files.
	chartDir, _ = filepath.Abs("../authproxy")
	examples, _ = filepath.Abs("../examples")
	// repoRoot is where the Dockerfile is.
	repoRoot, _ = filepath.Abs("../../..")
	// helmBin is set by TestMain.
	helmBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	home, err := os.MkdirTemp("", "authproxy-helm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	// Helm keeps its caches and settings here, not in the user's.
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		os.Setenv(v, filepath.Join(home, strings.ToLower(strings.TrimPrefix(v, "HELM_"))))
	}
	if helmBin, err = buildHelm(filepath.Join(home, "bin")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	dockerCleanup()
	return code
}

// buildHelm installs helmModule into dir and returns the binary's path.
// Go's build cache makes every build after the first a link.
func buildHelm(dir string) (string, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", helmModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", helmModule, err, out)
	}
	fmt.Printf("deploy/helm/test: go install %s took %s\n", helmModule, time.Since(start).Round(time.Second))
	return filepath.Join(dir, "helm"), nil
}

// helm runs the helm binary and returns its stdout, and its stderr as
// the error's text when it fails.
func helm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helmBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// valuesArgs turns values files and --set pairs into helm's arguments.
func valuesArgs(files []string, set ...string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

// lint runs helm lint --strict on the chart with the values.
func lint(t *testing.T, files []string, set ...string) {
	t.Helper()
	out, err := helm(append([]string{"lint", "--strict", chartDir}, valuesArgs(files, set...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm lint:\n%s", out)
	}
}

// template renders the chart as release "authproxy" in namespace "apps".
func template(files []string, set ...string) (string, error) {
	return helm(append([]string{"template", "authproxy", chartDir, "--namespace", "apps"}, valuesArgs(files, set...)...)...)
}

// render renders the chart and decodes every object strictly.
func render(t *testing.T, files []string, set ...string) *objects {
	t.Helper()
	out, err := template(files, set...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, out)
}
