package test

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestSidecarExample: deploy/helm/examples/sidecar.yaml decodes strictly;
// the proxy is a sidecar in the app's pod with the chart's promises, it
// listens on loopback alone, and the app calls it there.
func TestSidecarExample(t *testing.T) {
	objs := decodeAll(t, string(mustRead(t, filepath.Join(examples, "sidecar.yaml"))))
	if len(objs.deployments) != 1 || len(objs.configMaps) != 1 {
		t.Fatalf("want one Deployment and one ConfigMap, rendered %v", objs.kinds)
	}
	pod := &objs.deployments[0].Spec.Template.Spec
	proxy := container(t, pod, "authproxy")
	checkProxyContainer(t, pod, proxy)
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the proxy is not a native sidecar (an init container with restartPolicy Always)")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d app containers, want 1", len(pod.Containers))
	}
	app := &pod.Containers[0]

	host, port := listenPort(t, proxy, "AUTHPROXY_LISTEN")
	if host != "127.0.0.1" {
		t.Errorf("the sidecar listens on %q; on 127.0.0.1 only the pod's containers reach it", host)
	}
	called := false
	for _, e := range app.Env {
		u, err := url.Parse(e.Value)
		if err != nil || u.Scheme != "http" {
			continue
		}
		called = true
		if h, p, _ := net.SplitHostPort(u.Host); h != "127.0.0.1" || p != strconv.Itoa(int(port)) {
			t.Errorf("the app's %s=%s does not call the sidecar at 127.0.0.1:%d", e.Name, e.Value, port)
		}
	}
	if !called {
		t.Errorf("no variable of the app names the sidecar's URL")
	}
	for _, m := range app.VolumeMounts {
		if v := volume(pod, m.Name); v != nil && v.Secret != nil {
			t.Errorf("the app mounts Secret %s: the credentials are the proxy's alone", v.Secret.SecretName)
		}
	}
	cm := objs.configMaps[0]
	if v := volume(pod, mountAt(proxy, "/etc/authproxy").Name); v.ConfigMap.Name != cm.Name {
		t.Errorf("the config volume names ConfigMap %s, the example has %s", v.ConfigMap.Name, cm.Name)
	}
	text := cm.Data["proxy.yaml"]
	for _, key := range []string{"listen:", "admin:", "shutdown_timeout:"} {
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, key) {
				t.Errorf("proxy.yaml sets %s, which the container's AUTHPROXY_* variables override", key)
			}
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
