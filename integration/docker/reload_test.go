package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is a config for a proxy container next to the stack's
// fakeapis service; more is appended under upstreams.
const reloadConfig = `listen: ":8080"
admin: {listen: ":9090"}
log: {level: info, format: json}
store: {type: file, path: /var/lib/authproxy/tokens.json}
upstreams:
  redgifs:
    target: http://fakeapis:9101
    token: {url: "http://fakeapis:9101/v2/oauth/client", client_id: demo-client, client_secret: demo-secret}
`

const redboothUpstream = `  redbooth:
    target: http://fakeapis:9105
    token: {grant_type: refresh_token, url: "http://fakeapis:9105/oauth/token", client_id: demo-client, client_secret: demo-secret, refresh_token: demo-redbooth-refresh-token}
`

const producthuntUpstream = `  producthunt:
    target: http://fakeapis:9102
    token: {url: "http://fakeapis:9102/v2/oauth/token", client_id: demo-client, client_secret: demo-secret, body_format: json}
`

// writeFile writes a file the container's user (65532) can read.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o755)
}

// TestConfigChangeAppliedWithoutRestart: a proxy container whose config
// directory is mounted from this machine applies a change to it while it
// runs (issue point 6): a plain edit of the file, and the swap of the
// `..data` symlink with which Kubernetes updates a ConfigMap volume. The
// first container also keeps its tokens in a bind-mounted directory
// prepared as the README says, and its rotated refresh token must land
// there, owned by 65532, mode 0600.
func TestConfigChangeAppliedWithoutRestart(t *testing.T) {
	requireDocker(t)
	requireFreePorts(t, 9105)
	p := newProject(t, "reload")
	p.run(t, "docker compose up -d fakeapis")
	network := p.name + "_default"
	work := t.TempDir()

	// runProxy runs the image with dir mounted as its config directory,
	// on the stack's network, and returns its base URL.
	runProxy := func(t *testing.T, dir string, extra ...string) string {
		args := append([]string{"run", "-d", "--label", projectPrefix, "--network", network, "-p", "127.0.0.1::8080",
			"-v", dir + ":/etc/authproxy/conf:ro", "-e", "AUTHPROXY_CONFIG=/etc/authproxy/conf/proxy.yaml"}, extra...)
		id := docker(t, append(args, "authproxy")...)
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := execOutput("docker", "logs", "--tail", "20", id)
				t.Logf("the proxy container's last log lines:\n%s", out)
			}
			docker(t, "rm", "-f", "-v", id)
		})
		base := "http://" + docker(t, "port", id, "8080")
		authenticated(t, time.Minute, base+"/redgifs/v2/gifs/search")
		return base
	}
	// applied waits for the producthunt upstream the change adds.
	applied := func(t *testing.T, base, how string) {
		t.Helper()
		if status, _ := get(base + "/producthunt/v2/api/graphql"); status != 404 {
			t.Fatalf("producthunt answered %d before the change", status)
		}
		took := eventually(t, 15*time.Second, "the change applied ("+how+")", func() (bool, string) {
			status, body := get(base + "/producthunt/v2/api/graphql")
			return status == 200, body
		})
		t.Logf("%s: applied after %s", how, took.Round(100*time.Millisecond))
	}

	t.Run("plain edit, and tokens in a bind mount", func(t *testing.T) {
		p := shell{dir: work}
		p.run(t, documented(t, "mkdir -p tokens && chown 65532:65532 tokens"))
		tokens := filepath.Join(work, "tokens")
		dir := filepath.Join(work, "plain")
		mkdir(t, dir)
		writeFile(t, filepath.Join(dir, "proxy.yaml"), reloadConfig+redboothUpstream)
		base := runProxy(t, dir, "-v", tokens+":/var/lib/authproxy")
		authenticated(t, 10*time.Second, base+"/redbooth/api/3/me")
		st, err := os.Stat(filepath.Join(tokens, "tokens.json"))
		if err != nil {
			t.Fatalf("no tokens.json in the bind-mounted directory: %v", err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65532 || st.Mode().Perm() != 0o600 {
			t.Errorf("tokens.json in the bind mount: uid %d mode %o; want 65532, 600", sys.Uid, st.Mode().Perm())
		}
		// In place, as `echo ... >> proxy.yaml` or an editor that keeps the
		// file does.
		f, err := os.OpenFile(filepath.Join(dir, "proxy.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(producthuntUpstream)
		f.Close()
		applied(t, base, "plain edit")
	})

	t.Run("ConfigMap ..data swap", func(t *testing.T) {
		dir := filepath.Join(work, "configmap")
		mkdir(t, dir)
		// The layout of a ConfigMap volume: proxy.yaml -> ..data/proxy.yaml,
		// ..data -> a timestamped directory.
		v1 := "..2026_01_01_00_00_00.000000001"
		mkdir(t, filepath.Join(dir, v1))
		writeFile(t, filepath.Join(dir, v1, "proxy.yaml"), reloadConfig)
		must(t, os.Symlink(v1, filepath.Join(dir, "..data")))
		must(t, os.Symlink("..data/proxy.yaml", filepath.Join(dir, "proxy.yaml")))
		base := runProxy(t, dir)
		// Kubernetes' atomic writer: a new directory, a new symlink renamed
		// over ..data, the old directory removed.
		v2 := "..2026_01_01_00_01_00.000000002"
		mkdir(t, filepath.Join(dir, v2))
		writeFile(t, filepath.Join(dir, v2, "proxy.yaml"), reloadConfig+producthuntUpstream)
		must(t, os.Symlink(v2, filepath.Join(dir, "..data_tmp")))
		must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		must(t, os.RemoveAll(filepath.Join(dir, v1)))
		// If only this fails: the reload watches for events named
		// proxy.yaml, and a ConfigMap update renames ..data instead
		// (app/reload.go).
		applied(t, base, "..data swap; app/reload.go must react to the ..data rename")
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
