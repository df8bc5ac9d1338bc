package test

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// proxyUID is the image's user, which runAsNonRoot can check.
const proxyUID = 65532

// env returns the value of a plain variable of c ("" if absent or from
// a reference) and whether c sets it.
func env(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// portOf is the number of c's port named name, or that the probe gives.
func portOf(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

// listenPort is the port of an AUTHPROXY_*LISTEN address (":9090").
func listenPort(t *testing.T, c *corev1.Container, name string) (host string, port int32) {
	t.Helper()
	addr, ok := env(c, name)
	if !ok {
		t.Fatalf("container %s does not set %s: the image's default would apply, which the probes and Service must not assume", c.Name, name)
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, addr, err)
	}
	n, _ := strconv.Atoi(p)
	return h, int32(n)
}

// checkProxyContainer checks what the chart and the sidecar example
// promise about the proxy's container in pod: the restricted security
// context, the probes on the admin port, the drain fitting in the grace
// period, GOMEMLIMIT from the memory limit, the config from a ConfigMap
// mounted as a directory, and credentials taken only from Secrets.
func checkProxyContainer(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	// Security context: the container's, falling back on the pod's.
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("container %s has no securityContext", c.Name)
	}
	if v := firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot); !v {
		t.Errorf("runAsNonRoot is not true")
	}
	if v := firstInt(sc.RunAsUser, psc.RunAsUser); v != proxyUID {
		t.Errorf("runAsUser is %d, want %d", v, proxyUID)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities are %+v, want drop [ALL] and no add", sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile is %+v, want RuntimeDefault", seccomp)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("privileged")
	}

	// Probes: liveness /healthz, readiness /readyz, on the admin listener.
	_, adminPort := listenPort(t, c, "AUTHPROXY_ADMIN_LISTEN")
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s with httpGet", p.what)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path is %q, want %q", p.what, p.probe.HTTPGet.Path, p.path)
		}
		if got := portOf(t, c, p.probe.HTTPGet.Port); got != adminPort {
			t.Errorf("%s is on port %d, the admin listener on %d", p.what, got, adminPort)
		}
	}

	// The drain fits in the grace period.
	st, ok := env(c, "AUTHPROXY_SHUTDOWN_TIMEOUT")
	if !ok {
		t.Fatalf("AUTHPROXY_SHUTDOWN_TIMEOUT is not set: the grace period cannot be checked against the drain")
	}
	drain, err := time.ParseDuration(st)
	if err != nil {
		t.Fatalf("AUTHPROXY_SHUTDOWN_TIMEOUT=%q: %v", st, err)
	}
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %s is not longer than shutdown_timeout %s", describe(pod.TerminationGracePeriodSeconds), drain)
	}

	// GOMEMLIMIT: 90% of the memory limit, in bytes.
	limit, hasLimit := c.Resources.Limits[corev1.ResourceMemory]
	gml, hasGML := env(c, "GOMEMLIMIT")
	if !hasLimit {
		t.Errorf("no memory limit")
	} else if want := strconv.FormatInt(limit.Value()*90/100, 10); !hasGML || gml != want {
		t.Errorf("GOMEMLIMIT is %q (set: %v); want %s, 90%% of the memory limit %s", gml, hasGML, want, limit.String())
	}

	// The config: a ConfigMap, mounted as the directory --config names,
	// never through subPath (which Kubernetes never updates).
	configPath := argAfter(c.Args, "--config")
	if configPath == "" {
		t.Fatalf("args %q do not name --config", c.Args)
	}
	m := mountAt(c, path.Dir(configPath))
	if m == nil {
		t.Fatalf("nothing is mounted at %s, the config's directory", path.Dir(configPath))
	}
	if m.SubPath != "" || m.SubPathExpr != "" || !m.ReadOnly {
		t.Errorf("the config is mounted with subPath %q or not read-only: %+v", m.SubPath, m)
	}
	if v := volume(pod, m.Name); v == nil || v.ConfigMap == nil {
		t.Errorf("the config's volume %q is not a ConfigMap", m.Name)
	}

	// Credentials only by reference to a Secret: no plain value of a
	// variable that names a secret.
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef == nil && e.ValueFrom.ResourceFieldRef == nil {
			t.Errorf("env %s comes from %+v", e.Name, e.ValueFrom)
		}
		if e.Value != "" && looksSecret(e.Name) {
			t.Errorf("env %s has a value written in the spec; it must come from a Secret", e.Name)
		}
	}
	for _, m := range c.VolumeMounts {
		if v := volume(pod, m.Name); v != nil && v.Secret != nil && !m.ReadOnly {
			t.Errorf("the Secret volume %s is mounted writable", m.Name)
		}
	}
}

func looksSecret(name string) bool {
	n := strings.ToUpper(name)
	for _, s := range []string{"SECRET", "PASSWORD", "TOKEN", "KEY"} {
		if strings.Contains(n, s) && !strings.HasSuffix(n, "_FILE") {
			return true
		}
	}
	return false
}

func firstBool(ps ...*bool) bool {
	for _, p := range ps {
		if p != nil {
			return *p
		}
	}
	return false
}

func firstInt(ps ...*int64) int64 {
	for _, p := range ps {
		if p != nil {
			return *p
		}
	}
	return -1
}

func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func mountAt(c *corev1.Container, dir string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if path.Clean(c.VolumeMounts[i].MountPath) == path.Clean(dir) {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// mountFor is the mount whose directory holds file.
func mountFor(c *corev1.Container, file string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(c.VolumeMounts[i].MountPath, "/")+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for _, list := range [][]corev1.Container{pod.Containers, pod.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

func quantity(s string) resource.Quantity { return resource.MustParse(s) }

// describe prints v, and what a pointer points to.
func describe(v any) string {
	if p, ok := v.(*int64); ok && p != nil {
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%+v", v)
}
