package docker

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestForwardProfile is docs/forward-proxy.md's compose stack as a user
// runs it: an unmodified client (the golang image running a program that
// only calls http.Get) with HTTPS_PROXY set and authproxy's CA trusted
// calls https://api.redgifs.test by its own name; the fake API answers
// "authenticated":true only to the token authproxy attaches inside the
// tunnel, since the app sends none. A second run finds the CAs kept. The
// documented down -v leaves no container, volume or network behind.
func TestForwardProfile(t *testing.T) {
	requireDocker(t)
	p := newProject(t, "forward")
	run := documented(t, "docker compose --profile forward run --rm legacy-app")
	for i := range 2 {
		out := p.run(t, run)
		if !strings.Contains(out, "200 OK") || !strings.Contains(out, `"authenticated":true`) {
			t.Fatalf("run %d: %s: the app did not get the API's authenticated answer:\n%s", i+1, run, out)
		}
		if strings.Contains(out, "demo-secret") {
			t.Errorf("run %d: the client secret is in the output", i+1)
		}
	}
	proxy := p.container(t, "forward-proxy")
	logs, _ := execOutput("docker", "logs", proxy)
	if !strings.Contains(logs, `"mode":"forward"`) || !strings.Contains(logs, `"host":"api.redgifs.test:443"`) {
		t.Errorf("the forward proxy's access log names no forward request for api.redgifs.test:443:\n%s", logs)
	}
	if strings.Contains(logs, "demo-secret") || strings.Contains(logs, "PRIVATE KEY") {
		t.Error("a secret is in the forward proxy's log")
	}
	// The app's user reads the CA's certificate, never its key.
	if out, err := p.try("docker compose --profile forward run --rm --entrypoint cat legacy-app /forward-ca/ca-key.pem"); err == nil || strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("the app's container read the CA's key (%v):\n%s", err, out)
	}

	// What the stack made, to check that down -v removes it.
	var made []string
	for _, service := range []string{"forward-ca", "api-ca", "api", "forward-proxy"} {
		for _, id := range p.containers(t, service) {
			var mounts []struct{ Type, Name string }
			json.Unmarshal([]byte(docker(t, "inspect", "-f", "{{json .Mounts}}", id)), &mounts)
			for _, m := range mounts {
				if m.Type == "volume" {
					made = append(made, "volume "+m.Name)
				}
			}
		}
	}
	if len(made) < 2 {
		t.Errorf("the stack's volumes: %v; want forward-ca and api-ca at least", made)
	}
	p.run(t, documented(t, "docker compose --profile forward down -v"))
	for _, args := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q"}} {
		if left := docker(t, append(args, "--filter", "label=com.docker.compose.project="+p.name)...); left != "" {
			t.Errorf("after down -v, docker %s: %s", strings.Join(args, " "), left)
		}
	}
	for _, v := range made {
		name := strings.TrimPrefix(v, "volume ")
		if _, err := execOutput("docker", "volume", "inspect", name); err == nil {
			t.Errorf("after down -v, %s is still there", v)
		}
	}
}
