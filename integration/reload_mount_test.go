package integration

// How a config file changes under a running proxy in Kubernetes and
// Docker, and with a writer that is slow.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// kubeVolume lays out dir as the kubelet does a ConfigMap volume:
//
//	..2026_12_01_10_00_00.000000001/proxy.yaml
//	..data -> ..2026_12_01_10_00_00.000000001
//	proxy.yaml -> ..data/proxy.yaml
//
// and returns the path of proxy.yaml.
func kubeVolume(t *testing.T, dir, text string) string {
	t.Helper()
	ts := "..2026_12_01_10_00_00.000000001"
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ts, "proxy.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"..data": ts, "proxy.yaml": "..data/proxy.yaml"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "proxy.yaml")
}

// kubeUpdate changes the ConfigMap as the kubelet's AtomicWriter does: a
// new timestamped directory, a ..data_tmp symlink to it renamed over
// ..data, and the old directory removed. proxy.yaml itself is untouched.
func kubeUpdate(t *testing.T, dir, text string, n int) {
	t.Helper()
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	ts := fmt.Sprintf("..2026_12_01_10_00_%02d.%09d", n, n)
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ts, "proxy.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

// withProductHunt adds a Product Hunt upstream to config text.
func withProductHunt(t *testing.T, e *env, text string) (string, fakeapi.Flavor) {
	ph := fakeapi.ProductHunt()
	phURL := newServer(t, fakeapi.New(ph, clientID, clientSecret, e.clock.Now))
	return text + "  producthunt:\n    target: " + phURL + "\n    token:\n      url: " + phURL + ph.TokenPath +
		"\n      client_id: " + clientID + "\n      client_secret: " + clientSecret + "\n      body_format: json\n", ph
}

func (e *env) getThrough(prefix, path string) int {
	e.t.Helper()
	resp, err := e.client.Get("http://" + e.addr + prefix + path)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReloadFollowsAKubernetesConfigMapUpdate(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	e.stop()
	text, _ := os.ReadFile(e.config)
	dir := t.TempDir()
	e.config = kubeVolume(t, dir, string(text))
	e.launch()
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("before the update: %d", status)
	}

	updated, ph := withProductHunt(t, e, string(text))
	kubeUpdate(t, dir, updated, 1)
	e.waitForLog(`"msg":"config reloaded"`, 1)
	if status := e.getThrough("/producthunt", ph.APIPath); status != 200 {
		t.Fatalf("the upstream the update added: %d", status)
	}
	// A second update, back: the file watch followed the swap.
	kubeUpdate(t, dir, string(text), 2)
	e.waitForLog(`"msg":"config reloaded"`, 2)
	if status := e.getThrough("/producthunt", ph.APIPath); status != 404 {
		t.Errorf("the upstream the second update removed: %d", status)
	}
}

// An edit in place (the file truncated and written again, its inode kept)
// is applied; a file caught half-written is never applied, is logged
// once however many events follow, and the running config serves on.
func TestReloadOfAFileWrittenInPlace(t *testing.T) {
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{})
	text, _ := os.ReadFile(e.config)
	updated, ph := withProductHunt(t, e, string(text))
	half := updated[:strings.Index(updated, "      client_id: "+clientID+"\n      client_secret: "+clientSecret+"\n      body_format")]

	writeInPlace(t, e.config, half)
	e.waitForLog(`config reload rejected`, 1)
	if !strings.Contains(e.logs.String(), "upstreams.producthunt.token.client_id: required") {
		t.Error("the rejection does not say why")
	}
	// Events that change nothing in the file: no second rejection.
	const unchanged = "the config file's text is as last read; nothing to reload"
	n := strings.Count(e.logs.String(), unchanged)
	os.Chmod(e.config, 0o640)
	os.WriteFile(filepath.Join(filepath.Dir(e.config), "unrelated"), []byte("x"), 0o600)
	e.waitForLog(unchanged, n+1)
	if status, _, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Errorf("while the file is half-written: %d", status)
	}

	writeInPlace(t, e.config, updated)
	e.waitForLog(`"msg":"config reloaded"`, 1)
	if status := e.getThrough("/producthunt", ph.APIPath); status != 200 {
		t.Fatalf("the upstream the edit added: %d", status)
	}
	if n := strings.Count(e.logs.String(), "config reload rejected"); n != 1 {
		t.Errorf("the half-written file was rejected %d times, want once", n)
	}
}

// writeInPlace rewrites the file through the same inode, as `cat > file`
// or an editor that does not rename does.
func writeInPlace(t *testing.T, path, text string) {
	t.Helper()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("the file was replaced, not written in place")
	}
}
