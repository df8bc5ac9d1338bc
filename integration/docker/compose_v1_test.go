package docker

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestComposeV1 runs the documented compose lines with docker-compose,
// the Compose v1 that Debian 12 ships, for `docker compose`, as
// docs/docker.md tells its users to: the default stack, a restart, a login
// from a container, the replicas profile next to it, the clean-up.
func TestComposeV1(t *testing.T) {
	requireDocker(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose (Compose v1) is not installed; .ci/run installs it")
	}
	requireFreePorts(t, 8080, 9090, 9105, 8085, 8181, 8182, 8183)
	// Without --build: the file's compatibility is the point here, and
	// Compose v1's builder does not reuse the layers the suite's own build
	// left (a cold build, minutes on a busy machine).
	v1 := func(line string) string {
		return strings.Replace(strings.Replace(line, "docker compose", "docker-compose", 1), " --build", "", 1)
	}
	p := newProject(t, "v1")
	if out := p.run(t, "docker-compose --profile replicas config --services"); !strings.Contains(out, "replica") || !strings.Contains(out, "redis") {
		t.Errorf("docker-compose --profile replicas config: %s", out)
	}
	p.start(t, v1(documented(t, "docker compose up")), nil)
	authenticated(t, 3*time.Minute, "http://127.0.0.1:8080/redgifs/v2/gifs/search")
	authenticated(t, 10*time.Second, "http://127.0.0.1:8080/redbooth/api/3/me")
	p.run(t, v1(documented(t, "docker compose restart authproxy")))
	authenticated(t, time.Minute, "http://127.0.0.1:8080/redbooth/api/3/me")
	loginFromContainer(t, p.shell, v1(documented(t, "docker compose run --rm -p 127.0.0.1:8085:8085 authproxy login redbooth")))

	p.start(t, v1(documented(t, "docker compose --profile replicas up --build replica")), nil)
	for _, port := range []string{"8181", "8182", "8183"} {
		authenticated(t, 2*time.Minute, "http://127.0.0.1:"+port+"/redgifs/v2/gifs/search")
	}
	if n := len(p.containers(t, "replica")); n != 3 {
		t.Errorf("%d replicas; want 3", n)
	}
	if s := stats(t)["redgifs"]; s.TokenRequests != 2 {
		t.Errorf("redgifs: %d token requests; want 2 (the single proxy's and the fleet's)", s.TokenRequests)
	}
	p.run(t, v1(documented(t, "docker compose --profile replicas down -v")))
	if left := p.leftovers(t); len(left) > 0 {
		t.Errorf("after %s: %q", v1(documented(t, "docker compose --profile replicas down -v")), left)
	}
}
