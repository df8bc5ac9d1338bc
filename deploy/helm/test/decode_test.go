package test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// objects are the rendered objects, each decoded into its API type.
type objects struct {
	deployments      []*appsv1.Deployment
	configMaps       []*corev1.ConfigMap
	services         []*corev1.Service
	claims           []*corev1.PersistentVolumeClaim
	serviceAccounts  []*corev1.ServiceAccount
	secrets          []*corev1.Secret
	pdbs             []*policyv1.PodDisruptionBudget
	networkPolicies  []*networkingv1.NetworkPolicy
	serviceMonitors  []*monitoringv1.ServiceMonitor
	kinds            []string // in the order rendered
	deploymentByName map[string]*appsv1.Deployment
}

// typeMeta is what picks an object's type.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// strictDecode decodes a YAML object into its API type as strictly as
// the API server's strict field validation does: a field the type does
// not have (a misspelling, a wrong level of indentation), a field given
// twice, and a field spelt in another case fail. sigs.k8s.io/yaml's own
// UnmarshalStrict goes through encoding/json, which matches field names
// regardless of case: readOnlyRootFileSystem would pass for
// readOnlyRootFilesystem there, and a cluster would ignore it.
func strictDecode(doc []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("%v", strictErrs)
	}
	return nil
}

// decodeAll splits a multi-document YAML stream and decodes every object
// strictly (strictDecode) into the type its apiVersion and kind name; an
// apiVersion and kind this test does not know fail the test.
func decodeAll(t *testing.T, stream string) *objects {
	t.Helper()
	objs := &objects{deploymentByName: map[string]*appsv1.Deployment{}}
	for _, doc := range docSeparator.Split(stream, -1) {
		if isEmptyDoc(doc) {
			continue
		}
		var tm typeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		id := tm.APIVersion + " " + tm.Kind
		strict := func(into any) {
			t.Helper()
			if err := strictDecode([]byte(doc), into); err != nil {
				t.Fatalf("%s does not decode strictly: %v\n%s", id, err, doc)
			}
		}
		switch id {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			strict(o)
			objs.deployments = append(objs.deployments, o)
			objs.deploymentByName[o.Name] = o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			strict(o)
			objs.configMaps = append(objs.configMaps, o)
		case "v1 Service":
			o := &corev1.Service{}
			strict(o)
			objs.services = append(objs.services, o)
		case "v1 PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			strict(o)
			objs.claims = append(objs.claims, o)
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			strict(o)
			objs.serviceAccounts = append(objs.serviceAccounts, o)
		case "v1 Secret":
			o := &corev1.Secret{}
			strict(o)
			objs.secrets = append(objs.secrets, o)
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			strict(o)
			objs.pdbs = append(objs.pdbs, o)
		case "networking.k8s.io/v1 NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			strict(o)
			objs.networkPolicies = append(objs.networkPolicies, o)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &monitoringv1.ServiceMonitor{}
			strict(o)
			objs.serviceMonitors = append(objs.serviceMonitors, o)
		default:
			t.Fatalf("rendered %q, which this test does not know how to decode strictly; add its type to decodeAll\n%s", id, doc)
		}
		objs.kinds = append(objs.kinds, tm.Kind)
	}
	return objs
}

// isEmptyDoc is a document of nothing but comments and blank lines.
func isEmptyDoc(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// TestStrictDecodingCatchesMisspelledFields: the decoding that every
// rendered object goes through refuses a field its type does not have,
// so that a typo in a template cannot pass as an ignored field.
func TestStrictDecodingCatchesMisspelledFields(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"misspelled", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n"},
		{"wrong level", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      readOnly: true\n"},
		{"twice", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"},
		{"another case", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          securityContext: {readOnlyRootFileSystem: true}\n"},
		{"twice in yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: b\n  a: c\n"},
		{"servicemonitor", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  endpoints: [{port: admin, intervall: 30s}]\n  selector: {}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tm typeMeta
			yaml.Unmarshal([]byte(tc.doc), &tm)
			var into any
			switch tm.Kind {
			case "Deployment":
				into = &appsv1.Deployment{}
			case "Service":
				into = &corev1.Service{}
			case "ConfigMap":
				into = &corev1.ConfigMap{}
			case "ServiceMonitor":
				into = &monitoringv1.ServiceMonitor{}
			}
			if err := strictDecode([]byte(tc.doc), into); err == nil {
				t.Errorf("decoded without an error:\n%s", tc.doc)
			}
		})
	}
}
