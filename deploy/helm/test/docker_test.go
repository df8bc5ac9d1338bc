package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The Docker test runs like integration/docker: only with
// AUTHPROXY_DOCKER_TESTS=1 (.ci/run sets it), and then a missing engine
// is a failure, not a skip.
const enableVar = "AUTHPROXY_DOCKER_TESTS"

// imageVar names an image already built from the repository's
// Dockerfile to run instead of building one.
const imageVar = "AUTHPROXY_HELM_TEST_IMAGE"

// label marks every container, network and image this test makes, so
// that a run killed half-way is cleaned up by the next.
const label = "authproxytest-helm"

// upstreamPaths are a path of each fake API the test's config routes to;
// the fake answers "authenticated":true only when the proxy attached the
// token it accepts.
var upstreamPaths = map[string]string{
	"redgifs":     "/redgifs/v2/gifs/search",
	"redbooth":    "/redbooth/api/3/me",
	"producthunt": "/producthunt/v2/api/graphql",
}

// TestRenderedContainerRunsInDocker renders the chart with
// testdata/values-docker.yaml and runs its proxy container in Docker as
// the spec says (podRun), next to the fake APIs: the probes answer on
// the admin port, requests get tokens (one from a Secret's file, one
// from its variables), the rotated refresh token lands on the claim's
// directory, an update of the ConfigMap (a ..data swap) is applied
// without a restart, and a stop drains within the grace period.
func TestRenderedContainerRunsInDocker(t *testing.T) {
	if os.Getenv(enableVar) != "1" {
		t.Skipf("set %s=1 to run the rendered container in Docker (it needs a Docker engine)", enableVar)
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("%s=1 but no Docker engine answers: %v: %s", enableVar, err, out)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the volumes are given the owner and group a kubelet gives them (chown), which needs root")
	}
	dockerCleanup()
	image := os.Getenv(imageVar)
	if image == "" {
		image = fmt.Sprintf("%s:%d", label, os.Getpid())
		start := time.Now()
		build := exec.Command("docker", "build", "--label", label, "-t", image, ".")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("docker build: %v\n%s", err, out)
		}
		t.Logf("docker build -t %s . took %s", image, time.Since(start).Round(time.Second))
	}

	repo, tag, _ := strings.Cut(image, ":")
	objs := render(t, []string{valuesSets["docker"]}, "image.repository="+repo, "image.tag="+tag)
	secrets := decodeAll(t, string(mustRead(t, "testdata/secrets.yaml"))).secrets
	pod := &objs.deployments[0].Spec.Template.Spec
	c := container(t, pod, "authproxy")
	run := &podRun{t: t, pod: pod, c: c, objs: objs, secrets: secrets, dir: t.TempDir()}
	opts, imageArgs := run.dockerArgs()

	network := label + fmt.Sprint(os.Getpid())
	docker(t, "network", "create", "--label", label, network)
	docker(t, "run", "-d", "--label", label, "--network", network, "--network-alias", "fakeapis", "--no-healthcheck",
		image, "fakeapis", "--host", "0.0.0.0", "--base-port", "9101")
	args := append([]string{"run", "-d", "--label", label, "--network", network}, opts...)
	t.Logf("docker %s", strings.Join(redactSecretEnv(c, append(args, imageArgs...)), " "))
	id := docker(t, append(args, imageArgs...)...)
	t.Cleanup(func() {
		logs, _ := exec.Command("docker", "logs", id).CombinedOutput()
		if t.Failed() {
			t.Logf("the proxy's log:\n%s", logs)
		}
		for _, secret := range []string{"demo-secret", "demo-redbooth-refresh-token"} {
			if bytes.Contains(logs, []byte(secret)) {
				t.Errorf("the proxy's log holds a secret of the Secret")
			}
		}
	})
	published := func(port int32) string {
		return "http://" + strings.Split(docker(t, "port", id, fmt.Sprintf("%d/tcp", port)), "\n")[0]
	}
	_, adminPort := listenPort(t, c, "AUTHPROXY_ADMIN_LISTEN")
	_, httpPort := listenPort(t, c, "AUTHPROXY_LISTEN")
	admin, proxy := published(adminPort), published(httpPort)

	// The probes, as the spec gives them.
	for _, probe := range []struct{ what, path string }{
		{"liveness", c.LivenessProbe.HTTPGet.Path}, {"readiness", c.ReadinessProbe.HTTPGet.Path},
	} {
		took := eventually(t, time.Minute, probe.what+" probe "+probe.path+" answering 200", func() (bool, string) {
			if state := docker(t, "inspect", "-f", "{{.State.Status}}", id); state != "running" {
				t.Fatalf("the proxy's container is %s", state)
			}
			status, body := get(admin + probe.path)
			return status == 200, fmt.Sprint(status, " ", body)
		})
		t.Logf("%s probe %s: 200 after %s", probe.what, probe.path, took.Round(time.Millisecond))
	}
	for _, name := range []string{"redgifs", "redbooth"} {
		authenticated(t, proxy+upstreamPaths[name])
	}

	// The rotated refresh token, on the claim's directory, the proxy's.
	tokens := filepath.Join(run.volumes["tokens"], "tokens.json")
	fi, err := os.Stat(tokens)
	if err != nil {
		t.Fatalf("the file store on the claim: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != proxyUID || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: owner %d, mode %o; want %d, 0600", tokens, st.Uid, fi.Mode().Perm(), proxyUID)
	}

	// GOMEMLIMIT as the runtime took it.
	gml, _ := env(c, "GOMEMLIMIT")
	_, metrics := get(admin + "/metrics")
	if m := regexp.MustCompile(`(?m)^go_gc_gomemlimit_bytes (\S+)$`).FindStringSubmatch(metrics); m == nil {
		t.Errorf("/metrics has no go_gc_gomemlimit_bytes")
	} else if got := fmt.Sprint(mustFloat(t, m[1])); got != fmt.Sprint(mustFloat(t, gml)) {
		t.Errorf("the runtime's memory limit is %s, GOMEMLIMIT %s", m[1], gml)
	}

	// An update of the ConfigMap: Kubernetes swaps ..data; the proxy
	// reloads and serves the new upstream, with no restart.
	cm := objs.configMaps[0]
	text := cm.Data["proxy.yaml"] + `  producthunt:
    target: http://fakeapis:9102
    token:
      url: http://fakeapis:9102/v2/oauth/token
      client_id: ${DEMO_CLIENT_ID}
      client_secret_file: /run/secrets/demo/client_secret
      body_format: json
`
	writeAtomic(t, run.volumes["config"], map[string][]byte{"proxy.yaml": []byte(text)}, 0o644, *pod.SecurityContext.FSGroup)
	took := authenticated(t, proxy+upstreamPaths["producthunt"])
	t.Logf("the ConfigMap's new upstream served %s after the ..data swap", took.Round(time.Millisecond))
	if restarts := docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.StartedAt}}", id); !strings.HasPrefix(restarts, "0 ") {
		t.Errorf("the container restarted: %s", restarts)
	}

	// A stop (SIGTERM, then SIGKILL after the grace period) ends in a
	// clean exit well within it.
	grace := *pod.TerminationGracePeriodSeconds
	stopStart := time.Now()
	docker(t, "stop", "-t", fmt.Sprint(grace), id)
	stopped := time.Since(stopStart)
	if code := docker(t, "inspect", "-f", "{{.State.ExitCode}}", id); code != "0" || stopped >= time.Duration(grace)*time.Second {
		t.Errorf("docker stop -t %d: exit code %s after %s", grace, code, stopped.Round(time.Millisecond))
	}
	t.Logf("docker stop: exit 0 after %s (grace %ds)", stopped.Round(time.Millisecond), grace)
}

// redactSecretEnv is args with the values of c's variables that come
// from a Secret left out, for the test's log.
func redactSecretEnv(c *corev1.Container, args []string) []string {
	shown := slices.Clone(args)
	for i, a := range shown {
		name, _, ok := strings.Cut(a, "=")
		if !ok || i == 0 || shown[i-1] != "-e" {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				shown[i] = name + "=(Secret " + e.ValueFrom.SecretKeyRef.Name + ", key " + e.ValueFrom.SecretKeyRef.Key + ")"
			}
		}
	}
	return shown
}

// docker runs the docker CLI and returns its trimmed stdout.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// dockerCleanup removes what this test made, in this run or one killed
// before.
func dockerCleanup() {
	if os.Getenv(enableVar) != "1" {
		return
	}
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("docker", "rm", "-f", "-v", id).Run()
	}
	out, _ = exec.Command("docker", "network", "ls", "-q", "--filter", "label="+label).Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("docker", "network", "rm", id).Run()
	}
	out, _ = exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", label).Output()
	for _, img := range strings.Fields(string(out)) {
		// --no-prune keeps the build's layers: the next build is a cache hit.
		exec.Command("docker", "image", "rm", "--no-prune", img).Run()
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get returns the status and body of a GET; 0 if it could not connect.
func get(url string) (int, string) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// eventually polls cond every 250ms until it holds or d passes, and
// returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("after %s, still not %s: %s", d, what, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// authenticated waits until url answers 200 with "authenticated":true.
func authenticated(t *testing.T, url string) time.Duration {
	t.Helper()
	return eventually(t, 30*time.Second, "authenticated at "+url, func() (bool, string) {
		status, body := get(url)
		return status == 200 && strings.Contains(body, `"authenticated":true`), fmt.Sprint(status, " ", body)
	})
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}
