package docker

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"
)

// maxImageBytes is the size the image should stay under. It was 20 MB
// until tracing: the OpenTelemetry SDK and its OTLP exporters (gRPC's
// among them) took the stripped binary from 14.6 to 26.7 MB.
const maxImageBytes = 30e6

// TestImageIsStaticNonRootWithoutAShell: the image runs as uid 65532 (a
// number, which Kubernetes' runAsNonRoot can check), holds a static
// binary and no shell, and its token directory belongs to the proxy's
// user.
func TestImageIsStaticNonRootWithoutAShell(t *testing.T) {
	requireDocker(t)
	var img []struct {
		Size   int64
		Config struct {
			User    string
			Volumes map[string]struct{}
		}
	}
	if err := json.Unmarshal([]byte(docker(t, "image", "inspect", "authproxy")), &img); err != nil || len(img) != 1 {
		t.Fatalf("docker image inspect authproxy: %v", err)
	}
	t.Logf("image size: %.1f MB", float64(img[0].Size)/1e6)
	if img[0].Size > maxImageBytes {
		t.Errorf("the image is %.1f MB; aim: under %.0f MB", float64(img[0].Size)/1e6, maxImageBytes/1e6)
	}
	if img[0].Config.User != "65532:65532" {
		t.Errorf("USER is %q; want 65532:65532", img[0].Config.User)
	}
	if _, ok := img[0].Config.Volumes["/var/lib/authproxy"]; !ok {
		t.Errorf("no VOLUME /var/lib/authproxy: %v", img[0].Config.Volumes)
	}

	id := docker(t, "create", "--label", projectPrefix, "authproxy")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", "-v", id).Run() })
	export := exec.Command("docker", "export", id)
	stdout, _ := export.StdoutPipe()
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	var binary []byte
	var tokenDir *tar.Header
	files := 0
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files++
		name := strings.TrimSuffix(h.Name, "/")
		switch base := path.Base(name); {
		case base == "sh" || base == "bash" || base == "ash" || base == "dash" || base == "busybox":
			t.Errorf("the image has a shell: /%s", name)
		case name == "authproxy":
			binary, _ = io.ReadAll(tr)
		case name == "var/lib/authproxy":
			tokenDir = h
		}
	}
	export.Wait()
	t.Logf("%d files in the image", files)
	if tokenDir == nil || tokenDir.Uid != 65532 || tokenDir.Gid != 65532 {
		t.Errorf("/var/lib/authproxy: %+v; want owned by 65532:65532, so the proxy can write its tokens", tokenDir)
	}
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatalf("/authproxy: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Error("/authproxy is dynamically linked")
		}
	}
	if out, err := exec.Command("docker", "run", "--rm", "--label", projectPrefix, "--entrypoint", "/bin/sh", "authproxy", "-c", "true").CombinedOutput(); err == nil {
		t.Errorf("/bin/sh ran in the image: %s", out)
	}
	if out := docker(t, "run", "--rm", "--label", projectPrefix, "authproxy", "version"); !strings.HasPrefix(out, "authproxy ") {
		t.Errorf("authproxy version: %q", out)
	}
}

// TestDockerRunLineOfTheDockerfile runs the Dockerfile comment's `docker
// run` line as written, with the eight variables it passes exported (as
// placeholders: nothing is sent to the real APIs, only /healthz and a path
// no upstream takes are asked). It must run as a proxy, as uid 65532, on
// 127.0.0.1 only, turn healthy, and exit 0 on `docker stop`.
func TestDockerRunLineOfTheDockerfile(t *testing.T) {
	requireDocker(t)
	requireFreePorts(t, 8080, 9090)
	line := documented(t, "docker run --rm --stop-timeout 35 ")
	const volume = "authproxy-tokens"
	if !strings.Contains(line, "-v "+volume+":/var/lib/authproxy") {
		t.Fatalf("the line does not keep the tokens on the %s volume: %s", volume, line)
	}
	if exec.Command("docker", "volume", "inspect", volume).Run() == nil {
		t.Fatalf("a volume named %s exists already; the test would use it", volume)
	}
	t.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", volume).Run() })
	var env []string
	for _, api := range []string{"REDGIFS", "PRODUCTHUNT", "TEENQUOTES", "REDBOOTH"} {
		env = append(env, api+"_CLIENT_ID=placeholder-id", api+"_CLIENT_SECRET=placeholder-secret")
	}
	run := shell{dir: t.TempDir(), env: env}.start(t, line, nil)
	var id string
	eventually(t, 2*time.Minute, "a container running", func() (bool, string) {
		id = docker(t, "ps", "-q", "--filter", "ancestor=authproxy", "--filter", "publish=8080")
		return id != "" || run.exited(), run.out.String()
	})
	if run.exited() {
		t.Fatalf("%s exited: %v\n%s", line, run.err, run.out.String())
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", "-v", id).Run() })

	eventually(t, time.Minute, "/healthz answering on 127.0.0.1:9090", func() (bool, string) {
		status, body := get("http://127.0.0.1:9090/healthz")
		return status == 200, body
	})
	if status, body := get("http://127.0.0.1:8080/no-such-upstream"); status != 404 || !strings.Contains(body, "no_route") {
		t.Errorf("the proxy on 127.0.0.1:8080: %d %s", status, body)
	}
	ports := docker(t, "port", id)
	for _, l := range strings.Split(ports, "\n") {
		if !strings.Contains(l, "-> 127.0.0.1:") {
			t.Errorf("published beyond 127.0.0.1: %s", l)
		}
	}
	// docker top needs the pid column.
	if top := strings.Fields(docker(t, "top", id, "-o", "pid,uid")); len(top) != 4 || top[3] != "65532" {
		t.Errorf("docker top: %q; want the proxy as uid 65532", top)
	}
	if got := docker(t, "inspect", "-f", "{{.Config.StopTimeout}}", id); got != "35" {
		t.Errorf("stop timeout %s; want 35", got)
	}
	took := eventually(t, 90*time.Second, "healthy (the image's HEALTHCHECK)", func() (bool, string) {
		s := docker(t, "inspect", "-f", "{{.State.Health.Status}}", id)
		return s == "healthy", s
	})
	t.Logf("healthy after %s more", took.Round(time.Second))

	docker(t, "stop", id)
	if err := run.wait(t, time.Minute); err != nil {
		t.Errorf("%s after docker stop: %v; want exit 0\n%s", line, err, run.out.String())
	}
	if strings.Contains(run.out.String(), "placeholder-secret") {
		t.Error("a client secret is in the output")
	}
}
