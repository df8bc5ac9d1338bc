package integration

// The built binary, as a user runs it, with configs that YAML and the
// mounts of Kubernetes and Docker make tricky.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

func waitForLogOf(t *testing.T, logs *syncbuf.Buffer, what string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d× %s", n, what), func() bool { return strings.Count(logs.String(), what) >= n })
}

// An unquoted secret that YAML reads as a number, a boolean, a float or a
// date reaches the token endpoint exactly as written.
func TestBinarySendsUnquotedSecretsAsWritten(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	secrets := []string{"012345", "0x1F", "1e3", "1_000", "true", "1.50", ".inf", "2001-12-14"}
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\nadmin: {listen: off}\nstore: {type: memory}\nupstreams:\n")
	for i, secret := range secrets {
		api := newServer(t, fakeapi.New(f, clientID, secret, nil))
		fmt.Fprintf(&b, "  s%d:\n    target: %s\n    token:\n      url: %s%s\n      client_id: %s\n      client_secret: %s\n",
			i, api, api, f.TokenPath, clientID, secret)
	}
	config := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(config, []byte(b.String()), 0o600)

	out, err := exec.Command(bin, "check", "--config", config).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("OK, %d upstream(s)", len(secrets))) {
		t.Fatalf("check: %v %s", err, out)
	}
	addr := runBinary(t, bin, config).addr
	for i, secret := range secrets {
		resp, err := http.Get(fmt.Sprintf("http://%s/s%d%s", addr, i, f.APIPath))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("client_secret: %s (unquoted): %d; the token endpoint did not get it as written", secret, resp.StatusCode)
		}
	}
}

// A ConfigMap update reaches the running binary.
func TestBinaryFollowsAKubernetesConfigMapUpdate(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	apiURL := newServer(t, fakeapi.New(f, clientID, clientSecret, nil))
	text, _ := os.ReadFile(configFor(t, f, apiURL, setup{topYAML: "store: {type: memory}\n"}))
	dir := t.TempDir()
	p := runBinary(t, bin, kubeVolume(t, dir, string(text)))
	addr, logs := p.addr, p.logs

	kubeUpdate(t, dir, strings.Replace(string(text), "path_prefix: /redgifs", "path_prefix: /moved", 1), 1)
	waitForLogOf(t, logs, `"msg":"config reloaded"`, 1)
	resp, err := http.Get("http://" + addr + "/moved" + f.APIPath)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the update: %v %v", resp, err)
	}
	resp.Body.Close()
}

// A config file bind-mounted on its own, as docker -v ./proxy.yaml:/etc/...
// does: an edit in place on the host is applied; a file renamed over it on
// the host cannot reach the process (the mount keeps the old file), which
// says so. Needs root, for a mount namespace of its own.
func TestBinaryWithABindMountedConfigFile(t *testing.T) {
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("no mount namespace here (unshare -m: %v); this runs as root", err)
	}
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	apiURL := newServer(t, fakeapi.New(f, clientID, clientSecret, nil))
	host := configFor(t, f, apiURL, setup{topYAML: "store: {type: memory}\n"})
	text, _ := os.ReadFile(host)
	inside := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(inside, nil, 0o600)
	p := runBinary(t, bin, inside, "unshare", "-m", "sh", "-c", `mount --bind "$0" "$1" && exec "$2" "$3" "$4"`, host, inside)
	addr, logs := p.addr, p.logs

	writeInPlace(t, host, strings.Replace(string(text), "path_prefix: /redgifs", "path_prefix: /moved", 1))
	waitForLogOf(t, logs, `"msg":"config reloaded"`, 1)
	resp, err := http.Get("http://" + addr + "/moved" + f.APIPath)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the edit in place: %v %v", resp, err)
	}
	resp.Body.Close()

	tmp := host + ".new"
	os.WriteFile(tmp, text, 0o600)
	if err := os.Rename(tmp, host); err != nil {
		t.Fatal(err)
	}
	waitForLogOf(t, logs, "a bind mount of one file keeps the file it was given", 1)
	resp, err = http.Get("http://" + addr + "/moved" + f.APIPath)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the replacement: %v %v", resp, err)
	}
	resp.Body.Close()
}
