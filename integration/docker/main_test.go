// Package docker runs the image and the compose stacks the way a user
// does: the real `docker`, `docker compose` (Compose v2) and, where
// installed, `docker-compose` (v1) commands, against a real engine, in
// front of the fake APIs (`authproxy fakeapis`) inside the stack.
//
// It runs only with AUTHPROXY_DOCKER_TESTS=1 (.ci/run sets it); without,
// every test skips and says so. With it set, a missing engine or Compose
// v2 is a failure, not a skip. The image is built once, by the Dockerfile's
// own `docker build -t authproxy .`, and docker-compose.yml names it
// (image: authproxy), so the stacks reuse it. Each stack gets its own
// project name (COMPOSE_PROJECT_NAME) and is taken down with its volumes
// at the end of its test, failed or not. The stacks publish the ports the
// files name (8080, 9090, 9105, 8085, 8181-8183 on 127.0.0.1), so the
// tests run one after another.
//
// Every command that the Dockerfile, docker-compose.yml, the README's
// Docker section and docs/docker.md and docs/replicas.md show is run as
// written by some test; at the end the suite fails if one was not (see
// documented_test.go).
package docker

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// enableVar turns the suite on.
const enableVar = "AUTHPROXY_DOCKER_TESTS"

// projectPrefix starts every compose project and named resource the suite
// creates, so that a run killed half-way is cleaned up by the next one.
const projectPrefix = "authproxytest"

// repoRoot is where the Dockerfile and docker-compose.yml are.
var repoRoot, _ = filepath.Abs("../..")

// enabled is set by TestMain; tests call requireDocker.
var enabled bool

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(enableVar) != "1" {
		fmt.Printf("integration/docker: skipped: set %s=1 to run the Docker tests (they need a Docker engine and Compose v2; .ci/run sets it up)\n", enableVar)
		os.Exit(m.Run())
	}
	enabled = true
	start := time.Now()
	if err := preflight(); err != nil {
		fmt.Fprintf(os.Stderr, "integration/docker: %s=1 but %v\n", enableVar, err)
		os.Exit(1)
	}
	sweepLeftovers()
	if err := buildImage(); err != nil {
		fmt.Fprintf(os.Stderr, "integration/docker: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	sweepLeftovers()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		if missing := notRun(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "integration/docker: documented commands that no test ran as written:\n  %s\n", strings.Join(missing, "\n  "))
			code = 1
		}
	}
	fmt.Printf("integration/docker: the suite took %s (image build included)\n", time.Since(start).Round(time.Second))
	os.Exit(code)
}

// requireDocker skips the test unless the suite is on.
func requireDocker(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skipf("set %s=1 to run the Docker tests", enableVar)
	}
}

// preflight checks that an engine and Compose v2 answer.
func preflight() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return fmt.Errorf("no Docker engine answers (docker info: %v: %s); start one (see .ci/run)", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "docker", "compose", "version").CombinedOutput(); err != nil {
		return fmt.Errorf("no Compose v2 (docker compose version: %v: %s); .ci/run installs it", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// buildImage runs the Dockerfile's own build line, as written, once for
// the whole suite, and prints the image's size.
func buildImage() error {
	const line = "docker build -t authproxy ."
	start := time.Now()
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", line, err, out)
	}
	markRun(line)
	size, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", "authproxy").Output()
	var bytes int64
	fmt.Sscan(string(size), &bytes)
	fmt.Printf("integration/docker: %s took %s; image size %.1f MB\n", line, time.Since(start).Round(time.Second), float64(bytes)/1e6)
	return nil
}

// sweepLeftovers takes down every project and removes every volume the
// suite made that is still there: after a run that was killed, or one
// whose cleanup failed.
func sweepLeftovers() {
	seen := map[string]bool{}
	for _, args := range [][]string{
		{"ps", "-a", "--format", `{{.Label "com.docker.compose.project"}}`},
		{"volume", "ls", "--format", `{{.Label "com.docker.compose.project"}}`},
		{"network", "ls", "--format", `{{.Label "com.docker.compose.project"}}`},
	} {
		out, _ := exec.Command("docker", args...).Output()
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, projectPrefix) && !seen[p] {
				seen[p] = true
				exec.Command("docker", "compose", "-p", p, "--profile", "replicas", "down", "-v", "--remove-orphans", "-t", "1").Run()
			}
		}
	}
	// What plain `docker run` lines made: containers of the image, and the
	// named volume of the Dockerfile's example.
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+projectPrefix).Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("docker", "rm", "-f", "-v", id).Run()
	}
}
