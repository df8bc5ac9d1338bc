package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// valuesSets are the values files docs/kubernetes.md documents, and the
// one the Docker test runs.
var valuesSets = map[string]string{
	"single":   filepath.Join(examples, "values-single.yaml"),
	"replicas": filepath.Join(examples, "values-replicas.yaml"),
	"docker":   "testdata/values-docker.yaml",
}

// TestChartLintsAndRendersEachValuesSet: helm lint --strict and helm
// template for each documented values set; every object decodes strictly
// and keeps the chart's promises.
func TestChartLintsAndRendersEachValuesSet(t *testing.T) {
	for name, file := range valuesSets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lint(t, []string{file})
			objs := render(t, []string{file})
			checkChart(t, objs, file)
		})
	}
}

// chartValues is the part of a values file the checks compare with.
type chartValues struct {
	ReplicaCount *int32 `json:"replicaCount"`
	Store        struct {
		Type  string `json:"type"`
		Redis struct {
			URLSecret struct{ Name, Key string } `json:"urlSecret"`
		} `json:"redis"`
	} `json:"store"`
	Service struct {
		ExposeAdmin bool `json:"exposeAdmin"`
	} `json:"service"`
	PodDisruptionBudget struct{ Enabled bool } `json:"podDisruptionBudget"`
	NetworkPolicy       struct{ Enabled bool } `json:"networkPolicy"`
	ServiceMonitor      struct{ Enabled bool } `json:"serviceMonitor"`
	Credentials         struct {
		Files []struct{ SecretName, MountPath string } `json:"files"`
		Env   []struct{ Name, SecretName, Key string } `json:"env"`
	} `json:"credentials"`
}

func readValues(t *testing.T, file string) chartValues {
	t.Helper()
	var v chartValues
	data := mustRead(t, file)
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.Store.Type == "" {
		v.Store.Type = "file"
	}
	return v
}

// checkChart checks the rendered objects of one values file.
func checkChart(t *testing.T, objs *objects, file string) {
	t.Helper()
	v := readValues(t, file)
	if len(objs.deployments) != 1 {
		t.Fatalf("%d Deployments, want 1", len(objs.deployments))
	}
	if len(objs.secrets) != 0 {
		t.Errorf("the chart rendered %d Secrets; it must only use existing ones", len(objs.secrets))
	}
	d := objs.deployments[0]
	pod := &d.Spec.Template.Spec
	c := container(t, pod, "authproxy")
	checkProxyContainer(t, pod, c)
	podLabels := labels.Set(d.Spec.Template.Labels)
	if sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels); !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector does not match its pods")
	}
	if pod.SecurityContext == nil || pod.SecurityContext.FSGroup == nil || *pod.SecurityContext.FSGroup != proxyUID {
		t.Errorf("fsGroup is not %d: the token volume and the Secrets' files would not be the proxy's", proxyUID)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("the service account token is mounted; the proxy never calls the Kubernetes API")
	}

	// The config: the chart's ConfigMap holds proxy.yaml.
	cm := objs.configMap(t, volume(pod, mountAt(c, "/etc/authproxy").Name).ConfigMap.Name)
	if _, ok := cm.Data["proxy.yaml"]; !ok {
		t.Errorf("ConfigMap %s has no proxy.yaml", cm.Name)
	}

	// Credentials: the values' Secrets, as files and variables.
	for _, f := range v.Credentials.Files {
		m := mountAt(c, f.MountPath)
		if m == nil || !m.ReadOnly {
			t.Errorf("Secret %s: not mounted read-only at %s", f.SecretName, f.MountPath)
			continue
		}
		if vol := volume(pod, m.Name); vol.Secret == nil || vol.Secret.SecretName != f.SecretName {
			t.Errorf("the volume at %s is %s, want Secret %s", f.MountPath, describe(vol.VolumeSource), f.SecretName)
		}
	}
	for _, e := range v.Credentials.Env {
		var got *corev1.EnvVar
		for i := range c.Env {
			if c.Env[i].Name == e.Name {
				got = &c.Env[i]
			}
		}
		if got == nil || got.ValueFrom == nil || got.ValueFrom.SecretKeyRef == nil ||
			got.ValueFrom.SecretKeyRef.Name != e.SecretName || got.ValueFrom.SecretKeyRef.Key != e.Key {
			t.Errorf("env %s: %+v, want Secret %s key %s", e.Name, got, e.SecretName, e.Key)
		}
	}

	// The store: a claim for one replica, Redis for more.
	replicas := int32(1)
	if v.ReplicaCount != nil {
		replicas = *v.ReplicaCount
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, replicas)
	}
	storeType, _ := env(c, "AUTHPROXY_STORE_TYPE")
	if storeType != v.Store.Type {
		t.Errorf("AUTHPROXY_STORE_TYPE=%q, want %q", storeType, v.Store.Type)
	}
	switch v.Store.Type {
	case "file":
		if replicas != 1 {
			t.Errorf("%d replicas with a file store", replicas)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("strategy %q with a file store: the new pod would start while the old one holds the volume", d.Spec.Strategy.Type)
		}
		storePath, _ := env(c, "AUTHPROXY_STORE_PATH")
		m := mountFor(c, storePath)
		if m == nil || m.ReadOnly {
			t.Fatalf("the token file %s is on no writable mount", storePath)
		}
		vol := volume(pod, m.Name)
		if vol.PersistentVolumeClaim == nil {
			t.Fatalf("the token file's volume is %s, not a PersistentVolumeClaim", describe(vol.VolumeSource))
		}
		claim := objs.claim(t, vol.PersistentVolumeClaim.ClaimName)
		if claim.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("the token claim is deleted with the release; it holds rotated refresh tokens")
		}
	case "redis":
		if len(objs.claims) != 0 {
			t.Errorf("a PersistentVolumeClaim with the Redis store")
		}
		urlFile, _ := env(c, "AUTHPROXY_STORE_URL_FILE")
		m := mountFor(c, urlFile)
		if m == nil {
			t.Fatalf("AUTHPROXY_STORE_URL_FILE=%s is on no mount", urlFile)
		}
		vol := volume(pod, m.Name)
		if vol.Secret == nil || vol.Secret.SecretName != v.Store.Redis.URLSecret.Name ||
			len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Key != v.Store.Redis.URLSecret.Key ||
			filepath.Join(m.MountPath, vol.Secret.Items[0].Path) != urlFile {
			t.Errorf("the Redis URL file %s is not key %s of Secret %s: %s", urlFile, v.Store.Redis.URLSecret.Key, v.Store.Redis.URLSecret.Name, describe(vol.VolumeSource))
		}
	}

	// The Service: the proxy's port; the admin port only if asked.
	svc := objs.service(t, d.Name)
	if sel := labels.SelectorFromSet(svc.Spec.Selector); !sel.Matches(podLabels) {
		t.Errorf("Service %s does not select the pods", svc.Name)
	}
	_, httpPort := listenPort(t, c, "AUTHPROXY_LISTEN")
	_, adminPort := listenPort(t, c, "AUTHPROXY_ADMIN_LISTEN")
	admin := false
	for _, p := range svc.Spec.Ports {
		switch portOf(t, c, p.TargetPort) {
		case adminPort:
			admin = true
		case httpPort:
		default:
			t.Errorf("Service port %s goes to %s, which the proxy does not listen on", p.Name, p.TargetPort.String())
		}
	}
	if admin != v.Service.ExposeAdmin {
		t.Errorf("the Service carries the admin port: %v; service.exposeAdmin: %v", admin, v.Service.ExposeAdmin)
	}

	// The optional objects, selecting the proxy's pods.
	if got := len(objs.pdbs) == 1; got != v.PodDisruptionBudget.Enabled {
		t.Errorf("%d PodDisruptionBudgets; enabled: %v", len(objs.pdbs), v.PodDisruptionBudget.Enabled)
	} else if got {
		if sel := labels.SelectorFromSet(objs.pdbs[0].Spec.Selector.MatchLabels); !sel.Matches(podLabels) {
			t.Errorf("the PodDisruptionBudget does not select the pods")
		}
	}
	if got := len(objs.networkPolicies) == 1; got != v.NetworkPolicy.Enabled {
		t.Errorf("%d NetworkPolicies; enabled: %v", len(objs.networkPolicies), v.NetworkPolicy.Enabled)
	} else if got {
		np := objs.networkPolicies[0]
		if sel := labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels); !sel.Matches(podLabels) {
			t.Errorf("the NetworkPolicy does not select the pods")
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("an ingress rule without sources lets every pod in: %+v", rule)
			}
		}
	}
	if got := len(objs.serviceMonitors) == 1; got != v.ServiceMonitor.Enabled {
		t.Errorf("%d ServiceMonitors; enabled: %v", len(objs.serviceMonitors), v.ServiceMonitor.Enabled)
	} else if got {
		sm := objs.serviceMonitors[0]
		var scraped *corev1.Service
		for _, s := range objs.services {
			if labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
				if scraped != nil {
					t.Errorf("the ServiceMonitor selects Services %s and %s", scraped.Name, s.Name)
				}
				scraped = s
			}
		}
		if scraped == nil || scraped.Name == svc.Name {
			t.Fatalf("the ServiceMonitor selects %v, not a Service of its own", scraped)
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" || len(scraped.Spec.Ports) != 1 ||
			scraped.Spec.Ports[0].Name != sm.Spec.Endpoints[0].Port || portOf(t, c, scraped.Spec.Ports[0].TargetPort) != adminPort {
			t.Errorf("the ServiceMonitor does not scrape /metrics on the admin port: %+v, %+v", sm.Spec.Endpoints, scraped.Spec.Ports)
		}
	}
}

func (o *objects) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range o.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s rendered", name)
	return nil
}

func (o *objects) claim(t *testing.T, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	for _, c := range o.claims {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no PersistentVolumeClaim %s rendered", name)
	return nil
}

func (o *objects) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	for _, s := range o.services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %s rendered", name)
	return nil
}

// TestChartRefuses: what would not work is refused by helm template
// (and so helm install), with a message that says why.
func TestChartRefuses(t *testing.T) {
	single := []string{valuesSets["single"]}
	for _, tc := range []struct {
		name  string
		files []string
		set   []string
		want  []string
	}{
		{"several replicas on a file store", single, []string{"replicaCount=3"},
			[]string{"replicaCount: 3 replicas with store.type file", "locks the account out", "store.type: redis"}},
		{"several replicas in memory", single, []string{"replicaCount=2", "store.type=memory"},
			[]string{"replicaCount: 2 replicas with store.type memory", "store.type: redis"}},
		{"redis without its URL", single, []string{"store.type=redis"}, []string{"store.redis.urlSecret.name"}},
		{"no upstreams", nil, nil, []string{"config.upstreams: name at least one API"}},
		{"a literal client secret", single, []string{"config.upstreams.redgifs.token.client_secret=hunter2"},
			[]string{"config.upstreams.redgifs.token.client_secret: a secret written into the values"}},
		{"a literal inbound key", single, []string{"config.inbound.api_keys[0]=0123456789abcdef0123"},
			[]string{"config.inbound.api_keys: a secret written into the values"}},
		{"the store in config", single, []string{"config.store.type=memory"}, []string{"config.store: the chart sets it"}},
		{"a memory limit it cannot read", single, []string{"resources.limits.memory=lots"}, []string{`resources.limits.memory: "lots" is not a memory quantity`}},
		{"a PDB that blocks drains", single, []string{"podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1"},
			[]string{"podDisruptionBudget.minAvailable: 1 of 1 replicas would block every node drain"}},
		{"a network policy open to all", single, []string{"networkPolicy.from=null"}, []string{"networkPolicy.from: name the pods"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(tc.files, tc.set...)
			if err == nil {
				t.Fatalf("rendered:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			// What helm said, after the line that repeats its command.
			_, said, _ := strings.Cut(err.Error(), "\n")
			if strings.Contains(said, "hunter2") || strings.Contains(said, "0123456789abcdef0123") {
				t.Errorf("the error repeats the secret:\n%v", err)
			}
		})
	}
}

// TestGOMEMLIMITFollowsTheMemoryLimit: the variable is 90% of the limit
// however the limit is written, and absent without one.
func TestGOMEMLIMITFollowsTheMemoryLimit(t *testing.T) {
	single := []string{valuesSets["single"]}
	for _, limit := range []string{"256Mi", "1Gi", "1.5Gi", "500M", "268435456", "64Mi"} {
		t.Run(limit, func(t *testing.T) {
			t.Parallel()
			objs := render(t, single, "resources.limits.memory="+limit)
			c := container(t, &objs.deployments[0].Spec.Template.Spec, "authproxy")
			got, _ := env(c, "GOMEMLIMIT")
			q := quantity(limit)
			if want := q.Value() * 90 / 100; got != itoa(want) {
				t.Errorf("GOMEMLIMIT %q, want %d", got, want)
			}
		})
	}
	t.Run("a number in a values file", func(t *testing.T) {
		// YAML numbers reach the template as float64.
		file := filepath.Join(t.TempDir(), "limit.yaml")
		must(t, os.WriteFile(file, []byte("resources: {limits: {memory: 268435456}}\n"), 0o644))
		objs := render(t, append(single, file))
		c := container(t, &objs.deployments[0].Spec.Template.Spec, "authproxy")
		if got, _ := env(c, "GOMEMLIMIT"); got != "241591910" {
			t.Errorf("GOMEMLIMIT %q, want 241591910", got)
		}
	})
	t.Run("no limit", func(t *testing.T) {
		objs := render(t, single, "resources.limits=null")
		c := container(t, &objs.deployments[0].Spec.Template.Spec, "authproxy")
		if got, ok := env(c, "GOMEMLIMIT"); ok {
			t.Errorf("GOMEMLIMIT %q without a memory limit; the proxy's own default should apply", got)
		}
	})
}
