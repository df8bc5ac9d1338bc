package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// podRun turns one container of a rendered pod into `docker run`
// arguments, as a kubelet would run it: the user and groups, the
// read-only root, the capabilities, the memory and CPU limits, the
// environment (Secrets' keys resolved), the args, and each volume as a
// bind mount of a directory laid out as the kubelet lays it out. A field
// it does not know how to reproduce fails the test rather than being
// left out.
type podRun struct {
	t       *testing.T
	pod     *corev1.PodSpec
	c       *corev1.Container
	objs    *objects          // the rendered ConfigMaps
	secrets []*corev1.Secret  // the Secrets that exist before the install
	dir     string            // where the volumes' directories are made
	volumes map[string]string // volume name -> its directory here
}

// dockerArgs are the arguments of `docker run` before the image, and the
// image and args after it.
func (r *podRun) dockerArgs() (opts, image []string) {
	t, c, pod := r.t, r.c, r.pod
	t.Helper()
	r.volumes = map[string]string{}
	unsupported := func(what string, set bool) {
		t.Helper()
		if set {
			t.Fatalf("the spec sets %s, which this test cannot reproduce in Docker; teach podRun", what)
		}
	}
	unsupported("command", len(c.Command) != 0)
	unsupported("workingDir", c.WorkingDir != "")
	unsupported("envFrom", len(c.EnvFrom) != 0)
	unsupported("lifecycle", c.Lifecycle != nil)
	unsupported("stdin/tty", c.Stdin || c.TTY)
	unsupported("volumeDevices", len(c.VolumeDevices) != 0)
	unsupported("hostNetwork/PID/IPC", pod.HostNetwork || pod.HostPID || pod.HostIPC)
	unsupported("shareProcessNamespace", pod.ShareProcessNamespace != nil && *pod.ShareProcessNamespace)
	// A kubelet would add a variable per Service of the namespace
	// (AUTHPROXY_PORT=tcp://..., for the chart's own Service): AUTHPROXY_
	// is the proxy's override prefix.
	unsupported("enableServiceLinks (not false)", pod.EnableServiceLinks == nil || *pod.EnableServiceLinks)

	// User and groups: the container's security context over the pod's.
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	uid := firstInt(sc.RunAsUser, psc.RunAsUser)
	gid := firstInt(sc.RunAsGroup, psc.RunAsGroup)
	if uid < 0 || gid < 0 {
		t.Fatalf("no runAsUser and runAsGroup: the image's would apply, which this test does not assume")
	}
	if firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot) && uid == 0 {
		t.Fatalf("runAsNonRoot with runAsUser 0: the kubelet would refuse to start it")
	}
	// The kubelet ignores the image's HEALTHCHECK; the probes are the spec's.
	opts = append(opts, "--no-healthcheck", "--user", fmt.Sprintf("%d:%d", uid, gid))
	fsGroup := int64(-1)
	if psc.FSGroup != nil {
		fsGroup = *psc.FSGroup
		opts = append(opts, "--group-add", strconv.FormatInt(fsGroup, 10))
	}
	for _, g := range psc.SupplementalGroups {
		opts = append(opts, "--group-add", strconv.FormatInt(g, 10))
	}
	unsupported("sysctls", len(psc.Sysctls) != 0)
	unsupported("privileged", sc.Privileged != nil && *sc.Privileged)
	unsupported("procMount, seLinuxOptions, appArmorProfile", sc.ProcMount != nil || sc.SELinuxOptions != nil || sc.AppArmorProfile != nil)
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		opts = append(opts, "--read-only")
	}
	if sc.AllowPrivilegeEscalation == nil || !*sc.AllowPrivilegeEscalation {
		opts = append(opts, "--security-opt", "no-new-privileges")
	}
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Drop {
			opts = append(opts, "--cap-drop", string(cp))
		}
		for _, cp := range sc.Capabilities.Add {
			opts = append(opts, "--cap-add", string(cp))
		}
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	// RuntimeDefault is Docker's default profile; anything else is not
	// reproduced here.
	unsupported("a seccompProfile other than RuntimeDefault", seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault)

	// Limits: what the container is held to. Requests only place it.
	if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		opts = append(opts, "--memory", strconv.FormatInt(m.Value(), 10))
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		opts = append(opts, "--cpus", strconv.FormatFloat(cpu.AsApproximateFloat64(), 'f', 3, 64))
	}

	for _, e := range c.Env {
		opts = append(opts, "-e", e.Name+"="+r.envValue(e))
	}
	for _, p := range c.Ports {
		opts = append(opts, "-p", fmt.Sprintf("127.0.0.1::%d/%s", p.ContainerPort, strings.ToLower(string(p.Protocol))))
	}
	for _, m := range c.VolumeMounts {
		unsupported("a volume mount's subPath or propagation", m.SubPath != "" || m.SubPathExpr != "" || m.MountPropagation != nil)
		dir := r.volume(m.Name, fsGroup)
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		opts = append(opts, "-v", dir+":"+m.MountPath+":"+mode)
	}
	return opts, append([]string{c.Image}, c.Args...)
}

// envValue is what the kubelet would set a variable to.
func (r *podRun) envValue(e corev1.EnvVar) string {
	t := r.t
	t.Helper()
	if e.ValueFrom == nil {
		if strings.Contains(e.Value, "$(") {
			t.Fatalf("env %s refers to another variable, which this test does not expand", e.Name)
		}
		return e.Value
	}
	switch ref := e.ValueFrom; {
	case ref.SecretKeyRef != nil:
		data, ok := r.secret(ref.SecretKeyRef.Name)[ref.SecretKeyRef.Key]
		if !ok {
			t.Fatalf("env %s: Secret %s has no key %s (the kubelet would not start the container)", e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
		}
		return string(data)
	case ref.ResourceFieldRef != nil && ref.ResourceFieldRef.Resource == "limits.memory":
		limit := r.c.Resources.Limits[corev1.ResourceMemory]
		divisor := ref.ResourceFieldRef.Divisor
		if divisor.IsZero() {
			divisor = resource.MustParse("1")
		}
		return strconv.FormatInt((limit.Value()+divisor.Value()-1)/divisor.Value(), 10)
	}
	t.Fatalf("env %s comes from %+v, which this test does not resolve", e.Name, e.ValueFrom)
	return ""
}

// secret is the data of an existing Secret, stringData merged in as the
// API server does.
func (r *podRun) secret(name string) map[string][]byte {
	for _, s := range r.secrets {
		if s.Name == name {
			data := map[string][]byte{}
			for k, v := range s.Data {
				data[k] = v
			}
			for k, v := range s.StringData {
				data[k] = []byte(v)
			}
			return data
		}
	}
	r.t.Fatalf("no Secret %s exists (the kubelet would not start the pod)", name)
	return nil
}

// volume makes the directory of one of the pod's volumes, once.
func (r *podRun) volume(name string, fsGroup int64) string {
	t := r.t
	t.Helper()
	if dir, ok := r.volumes[name]; ok {
		return dir
	}
	v := volume(r.pod, name)
	if v == nil {
		t.Fatalf("a mount names volume %s, which the pod does not have", name)
	}
	dir := filepath.Join(r.dir, "volumes", name)
	switch {
	case v.ConfigMap != nil:
		cm := r.objs.configMap(t, v.ConfigMap.Name)
		files := map[string][]byte{}
		for k, s := range cm.Data {
			files[k] = []byte(s)
		}
		writeAtomic(t, dir, r.items(files, v.ConfigMap.Items), fileMode(v.ConfigMap.DefaultMode, 0o644), fsGroup)
	case v.Secret != nil:
		writeAtomic(t, dir, r.items(r.secret(v.Secret.SecretName), v.Secret.Items), fileMode(v.Secret.DefaultMode, 0o644), fsGroup)
	case v.PersistentVolumeClaim != nil || v.EmptyDir != nil:
		// A fresh volume whose root the kubelet gave to fsGroup, setgid,
		// group-writable.
		must(t, os.MkdirAll(dir, 0o755))
		if fsGroup >= 0 {
			must(t, os.Chown(dir, 0, int(fsGroup)))
			must(t, os.Chmod(dir, 0o2775))
		}
	default:
		t.Fatalf("volume %s is %s, which this test cannot reproduce", name, describe(v.VolumeSource))
	}
	r.volumes[name] = dir
	return dir
}

// items picks and renames a volume's keys as its items say.
func (r *podRun) items(data map[string][]byte, items []corev1.KeyToPath) map[string][]byte {
	if len(items) == 0 {
		return data
	}
	picked := map[string][]byte{}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			r.t.Fatalf("volume item %s: no such key", it.Key)
		}
		if it.Mode != nil || strings.Contains(it.Path, "/") {
			r.t.Fatalf("volume item %s: a mode or a nested path, which this test does not reproduce", it.Key)
		}
		picked[it.Path] = d
	}
	return picked
}

func fileMode(m *int32, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m)
}

// kubeletGeneration names the timestamped directories ..data points to.
var kubeletGeneration int

// writeAtomic lays out files as the kubelet's atomic writer does for a
// ConfigMap or Secret volume: the files in a timestamped directory, the
// ..data symlink to it, and a symlink per file through ..data. Run again
// on the same directory, it swaps ..data to a new generation with a
// rename, as an update of the ConfigMap does. With an fsGroup, files and
// directories belong to that group and are readable by it, as the
// kubelet's ownership change leaves them.
func writeAtomic(t *testing.T, dir string, files map[string][]byte, mode os.FileMode, fsGroup int64) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	kubeletGeneration++
	gen := fmt.Sprintf("..2026_01_01_00_00_%02d.%09d", kubeletGeneration, kubeletGeneration)
	genDir := filepath.Join(dir, gen)
	must(t, os.Mkdir(genDir, 0o755))
	if fsGroup >= 0 {
		mode |= 0o440
	}
	for name, data := range files {
		p := filepath.Join(genDir, name)
		must(t, os.WriteFile(p, data, mode))
		must(t, os.Chmod(p, mode))
		if fsGroup >= 0 {
			must(t, os.Chown(p, 0, int(fsGroup)))
		}
	}
	for _, d := range []string{dir, genDir} {
		if fsGroup >= 0 {
			must(t, os.Chown(d, 0, int(fsGroup)))
			must(t, os.Chmod(d, 0o2755))
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	must(t, os.Symlink(gen, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			must(t, os.Symlink(filepath.Join("..data", name), link))
		}
	}
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
