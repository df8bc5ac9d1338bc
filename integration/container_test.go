package integration

// What can be checked of the Dockerfile and docker-compose.yml without a
// Docker engine, so that `go test ./...` catches a broken file anywhere.
// integration/docker runs the real thing (AUTHPROXY_DOCKER_TESTS=1).

import (
	"bufio"
	"context"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/redistest"
	"go.yaml.in/yaml/v3"
)

// TestDockerfileBuildCommandIsAPlainStaticGoBuild runs the Dockerfile's
// own build line, as written, outside Docker.
func TestDockerfileBuildCommandIsAPlainStaticGoBuild(t *testing.T) {
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(?:RUN )?\s*(CGO_ENABLED=0 go build .*) -o /out/authproxy \.$`).FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal("no static go build line in the Dockerfile")
	}
	for _, want := range []string{"-trimpath", "app.Version=${VERSION}"} {
		if !strings.Contains(string(m[1]), want) {
			t.Errorf("the build line lacks %s", want)
		}
	}
	bin := filepath.Join(t.TempDir(), "authproxy")
	cmd := exec.Command("sh", "-c", string(m[1])+" -o "+bin+" .")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION=1.2.3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked; the distroless static image cannot run it")
		}
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || strings.TrimSpace(string(out)) != "authproxy 1.2.3" {
		t.Errorf("version: %q %v", out, err)
	}
	for _, want := range []string{"USER 65532:65532", "EXPOSE 8080 9090", `HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/authproxy", "health"]`,
		"AUTHPROXY_CONFIG=/etc/authproxy/proxy.yaml", "VOLUME /var/lib/authproxy"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}

// composeService is one service of docker-compose.yml.
type composeService struct {
	Build       string
	Command     []string
	Environment map[string]string
	Volumes     []string
	Profiles    []string
}

func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	var compose struct{ Services map[string]composeService }
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return compose.Services
}

// composeFakes runs the fakeapis service as docker-compose.yml does, on
// loopback, and returns each fake's host:port by name.
func composeFakes(t *testing.T, svc composeService) map[string]string {
	t.Helper()
	if svc.Build != "." || svc.Command[0] != "fakeapis" {
		t.Fatalf("fakeapis service: %+v", svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	fakesDone := make(chan int, 1)
	go func() {
		fakesDone <- app.Run(ctx, app.Options{Args: []string{"fakeapis", "--base-port", "0"}, Stdout: pw, Stderr: io.Discard})
		pw.Close()
	}()
	t.Cleanup(func() { cancel(); <-fakesDone })
	addrs := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(addrs) < 5 && sc.Scan() {
		fields := strings.Fields(sc.Text())
		addrs[fields[0]] = strings.TrimPrefix(fields[1], "http://")
	}
	go io.Copy(io.Discard, pr)
	return addrs
}

// composeConfig returns the config a proxy service mounts, as written but
// for the host names and ports, written to a temporary file.
func composeConfig(t *testing.T, svc composeService, fakes map[string]string) string {
	t.Helper()
	if svc.Build != "." {
		t.Fatalf("service: %+v", svc)
	}
	configInContainer := svc.Environment["AUTHPROXY_CONFIG"]
	var configOnHost string
	for _, v := range svc.Volumes {
		host, inContainer, _ := strings.Cut(v, ":")
		inContainer, _, _ = strings.Cut(inContainer, ":")
		if strings.HasPrefix(host, ".") {
			if _, err := os.Stat(filepath.Join("..", host)); err != nil {
				t.Errorf("volume %s: %v", v, err)
			}
			// The file itself, or the directory that holds it.
			if rest, ok := strings.CutPrefix(configInContainer, inContainer); ok && (rest == "" || rest[0] == '/') {
				configOnHost = filepath.Join("..", host, rest)
			}
		}
	}
	if configOnHost == "" {
		t.Fatalf("no volume mounts %s", configInContainer)
	}
	cfg, _ := os.ReadFile(configOnHost)
	text := string(cfg)
	for i, f := range []string{"redgifs", "producthunt", "teenquotes", "generic", "redbooth"} {
		text = strings.ReplaceAll(text, "fakeapis:910"+string(rune('1'+i)), fakes[f])
	}
	dir := t.TempDir()
	text = strings.Replace(text, `listen: ":8080"`, "listen: 127.0.0.1:0", 1)
	text = strings.Replace(text, `admin: {listen: ":9090"}`, "admin: {listen: 127.0.0.1:0}", 1)
	text = strings.Replace(text, "/var/lib/authproxy/tokens.json", filepath.Join(dir, "tokens.json"), 1)
	path := filepath.Join(dir, "compose.yaml")
	os.WriteFile(path, []byte(text), 0o600)
	return path
}

// runComposeProxy runs the proxy on path until the test ends and returns
// its address and its admin endpoints' base URL.
func runComposeProxy(t *testing.T, path string) (addr, admin string) {
	t.Helper()
	ready, adminReady := make(chan string, 1), make(chan string, 1)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Args: []string{"--config", path}, Stdout: io.Discard, Stderr: io.Discard,
			Ready: func(a string) { ready <- a }, AdminReady: func(a string) { adminReady <- a }})
	}()
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("the proxy exited with %d on %s", code, path)
	}
	t.Cleanup(func() { stop(); <-done })
	return addr, "http://" + <-adminReady
}

// TestComposeStackServesWithoutCredentials runs what docker-compose.yml
// runs, without Docker: the fakeapis service and the proxy with
// deploy/compose.yaml, service names pointed at loopback.
func TestComposeStackServesWithoutCredentials(t *testing.T) {
	services := readCompose(t)
	fakes := composeFakes(t, services["fakeapis"])
	addr, _ := runComposeProxy(t, composeConfig(t, services["authproxy"], fakes))
	for _, f := range fakeapi.All() {
		resp, err := http.Get("http://" + addr + "/" + f.Name + f.APIPath)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"authenticated":true`) {
			t.Errorf("%s: %d %s", f.Name, resp.StatusCode, body)
		}
	}
}

// TestComposeReplicasShareOneToken runs the replicas profile of
// docker-compose.yml the same way: its environment turns the file store
// of deploy/compose.yaml into Redis, and two replicas fetch one token
// per upstream between them.
func TestComposeReplicasShareOneToken(t *testing.T) {
	services := readCompose(t)
	svc := services["replica"]
	if !slices.Contains(svc.Profiles, "replicas") || !slices.Contains(services["redis"].Profiles, "replicas") {
		t.Fatalf("the replicas profile: %+v", svc)
	}
	srv := redistest.Start(t)
	for k, v := range svc.Environment {
		if k != "AUTHPROXY_CONFIG" {
			t.Setenv(k, strings.Replace(v, "redis:6379", srv.Addr(), 1))
		}
	}
	path := composeConfig(t, svc, composeFakes(t, services["fakeapis"]))
	var admins []string
	for range 2 {
		addr, admin := runComposeProxy(t, path)
		admins = append(admins, admin)
		for _, f := range fakeapi.All() {
			resp, err := http.Get("http://" + addr + "/" + f.Name + f.APIPath)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d", f.Name, resp.StatusCode)
			}
		}
	}
	for _, f := range fakeapi.All() {
		var fetched, adopted float64
		for _, admin := range admins {
			fetched += scrape(t, admin, `authproxy_shared_token_fetches_total{event="fetched",upstream="`+f.Name+`"}`)
			adopted += scrape(t, admin, `authproxy_shared_token_fetches_total{event="adopted",upstream="`+f.Name+`"}`)
		}
		if fetched != 1 || adopted != 1 {
			t.Errorf("%s: %v fetched, %v adopted across 2 replicas; want 1 and 1", f.Name, fetched, adopted)
		}
	}
}

// scrape reads one sample, named with its labels, from /metrics.
func scrape(t *testing.T, admin, sample string) float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
