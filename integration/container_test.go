package integration

// There is no Docker engine here: these tests check what can be checked
// without one. See README, "Docker and docker-compose".

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
	"strings"
	"testing"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/integration/fakeapi"
	"go.yaml.in/yaml/v3"
)

// TestDockerfileBuildCommandIsAPlainStaticGoBuild runs the Dockerfile's
// own build line, as written, outside Docker.
func TestDockerfileBuildCommandIsAPlainStaticGoBuild(t *testing.T) {
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o /out/authproxy \.$`).FindSubmatch(dockerfile)
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
	for _, want := range []string{"USER nonroot", "EXPOSE 8080 9090", `HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/authproxy", "health"]`,
		"AUTHPROXY_CONFIG=/etc/authproxy/proxy.yaml", "VOLUME /var/lib/authproxy"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}

// TestComposeStackServesWithoutCredentials runs what docker-compose.yml
// runs, without Docker: the fakeapis service and the proxy with
// deploy/compose.yaml, service names pointed at loopback.
func TestComposeStackServesWithoutCredentials(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Build       string
			Command     []string
			Environment map[string]string
			Volumes     []string
		}
	}
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	proxySvc, fakeSvc := compose.Services["authproxy"], compose.Services["fakeapis"]
	if proxySvc.Build != "." || fakeSvc.Build != "." || fakeSvc.Command[0] != "fakeapis" {
		t.Fatalf("services: %+v", compose.Services)
	}
	configInContainer := proxySvc.Environment["AUTHPROXY_CONFIG"]
	var configOnHost string
	for _, v := range proxySvc.Volumes {
		host, inContainer, _ := strings.Cut(v, ":")
		if strings.HasPrefix(host, ".") {
			if _, err := os.Stat(filepath.Join("..", host)); err != nil {
				t.Errorf("volume %s: %v", v, err)
			}
			if strings.HasPrefix(inContainer, configInContainer) {
				configOnHost = filepath.Join("..", host)
			}
		}
	}
	if configOnHost == "" {
		t.Fatalf("no volume mounts %s", configInContainer)
	}

	// The fakeapis service.
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

	// The proxy, with the compose config as written but for the host names.
	cfg, _ := os.ReadFile(configOnHost)
	text := string(cfg)
	for i, f := range []string{"redgifs", "producthunt", "teenquotes", "generic", "redbooth"} {
		text = strings.ReplaceAll(text, "fakeapis:910"+string(rune('1'+i)), addrs[f])
	}
	dir := t.TempDir()
	text = strings.Replace(text, `listen: ":8080"`, "listen: 127.0.0.1:0", 1)
	text = strings.Replace(text, `admin: {listen: ":9090"}`, "admin: {listen: 127.0.0.1:0}", 1)
	text = strings.Replace(text, "/var/lib/authproxy/tokens.json", filepath.Join(dir, "tokens.json"), 1)
	path := filepath.Join(dir, "compose.yaml")
	os.WriteFile(path, []byte(text), 0o600)
	ready := make(chan string, 1)
	proxyCtx, stopProxy := context.WithCancel(context.Background())
	proxyDone := make(chan int, 1)
	go func() {
		proxyDone <- app.Run(proxyCtx, app.Options{Args: []string{"--config", path}, Stdout: io.Discard, Stderr: io.Discard,
			Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-proxyDone:
		t.Fatalf("the proxy exited with %d on deploy/compose.yaml", code)
	}
	defer func() { stopProxy(); <-proxyDone }()
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
