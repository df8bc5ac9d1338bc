package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/pki"
)

const forwardUpstreams = `
upstreams:
  api:
    target: https://api.example.com
    hosts: [API.Example.com., legacy.example.com:8443]
    token: {url: https://idp.example/token, client_id: id, client_secret: s3cret}
  other:
    target: https://127.0.0.1:9443
    path_prefix: /other
    hosts: [other.example.net]
    token: {url: https://idp.example/token, client_id: id, client_secret: s3cret}
`

// forwardConfig writes a config with the upstreams above and forward
// (the forward_proxy section) in a directory holding a CA made for
// hosts, and loads it.
func forwardConfig(t *testing.T, forward string, caHosts ...string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	if len(caHosts) > 0 {
		if _, _, err := pki.WriteCA(dir, caHosts, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(forwardUpstreams+forward), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path, Options{NoEnvOverrides: true})
}

const forwardOn = `
forward_proxy:
  listen: 127.0.0.1:3128
  ca_cert_file: ca.pem
  ca_key_file: ca-key.pem
  pass_through: [telemetry.example.org, "*.s3.example.org", "*.example.org:8443"]
`

func TestForwardProxyHostsAndPassThrough(t *testing.T) {
	cfg, err := forwardConfig(t, forwardOn, "example.com", "example.net")
	if err != nil {
		t.Fatal(err)
	}
	wantAPI := []string{"api.example.com:443", "api.example.com:80", "legacy.example.com:8443"}
	if !reflect.DeepEqual(cfg.Upstreams[0].Hosts, wantAPI) {
		t.Errorf("api hosts %v, want %v (the target's, then each listed, lower case, on 443 and 80 without a port)", cfg.Upstreams[0].Hosts, wantAPI)
	}
	// A target named by an IP address is reached by the names listed only.
	if want := []string{"other.example.net:443", "other.example.net:80"}; !reflect.DeepEqual(cfg.Upstreams[1].Hosts, want) {
		t.Errorf("other hosts %v, want %v", cfg.Upstreams[1].Hosts, want)
	}
	want := ForwardProxy{Listen: "127.0.0.1:3128", CACertFile: cfg.ForwardProxy.CACertFile, CAKeyFile: cfg.ForwardProxy.CAKeyFile, MaxTunnels: 1024,
		PassThrough: []string{"telemetry.example.org:443", "*.s3.example.org:443", "*.example.org:8443"}}
	if !reflect.DeepEqual(cfg.ForwardProxy, want) {
		t.Errorf("forward_proxy %+v, want %+v", cfg.ForwardProxy, want)
	}
}

func TestForwardProxyProblems(t *testing.T) {
	for _, tt := range []struct {
		name, forward string
		caHosts       []string
		chmod         os.FileMode // of the CA key, if not 0
		unconstrained bool
		key, want     string
	}{
		{name: "no CA", forward: "\nforward_proxy: {listen: 127.0.0.1:3128}\n",
			key: "forward_proxy.ca_cert_file", want: "authproxy ca create"},
		{name: "key readable by the group", forward: forwardOn, caHosts: []string{"example.com", "example.net"}, chmod: 0o640,
			key: "forward_proxy.ca_key_file", want: "chmod 600"},
		{name: "key writable by others", forward: forwardOn, caHosts: []string{"example.com", "example.net"}, chmod: 0o602,
			key: "forward_proxy.ca_key_file", want: "readable by others"},
		{name: "CA excludes a host", forward: forwardOn, caHosts: []string{"example.com"},
			key: "forward_proxy.ca_cert_file", want: "do not permit other.example.net"},
		{name: "CA without constraints", forward: forwardOn, unconstrained: true,
			key: "forward_proxy.ca_cert_file", want: "no name constraints"},
		{name: "pass-through takes an upstream's host", forward: strings.Replace(forwardOn, "telemetry.example.org", "\"*.example.com\"", 1),
			caHosts: []string{"example.com", "example.net"}, key: "forward_proxy.pass_through[0]", want: "without its token"},
		{name: "IP pass-through", forward: strings.Replace(forwardOn, "telemetry.example.org", "10.0.0.1", 1),
			caHosts: []string{"example.com", "example.net"}, key: "forward_proxy.pass_through[0]", want: "IP address"},
		{name: "pass-through of a whole top-level domain", forward: strings.Replace(forwardOn, "telemetry.example.org", "\"*.org\"", 1),
			caHosts: []string{"example.com", "example.net"}, key: "forward_proxy.pass_through[0]", want: "every name under .org"},
		{name: "bad listen", forward: strings.Replace(forwardOn, "127.0.0.1:3128", "3128", 1),
			caHosts: []string{"example.com", "example.net"}, key: "forward_proxy.listen", want: "127.0.0.1:3128"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if len(tt.caHosts) > 0 {
				if _, _, err := pki.WriteCA(dir, tt.caHosts, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if tt.unconstrained {
				writeUnconstrainedCA(t, dir)
			}
			if tt.chmod != 0 {
				os.Chmod(filepath.Join(dir, "ca-key.pem"), tt.chmod)
			}
			path := filepath.Join(dir, "proxy.yaml")
			os.WriteFile(path, []byte(forwardUpstreams+tt.forward), 0o600)
			_, err := Load(path, Options{NoEnvOverrides: true})
			if err == nil || !strings.Contains(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant a problem of %s saying %q", err, tt.key, tt.want)
			}
		})
	}
}

func TestUpstreamHostsProblems(t *testing.T) {
	for hosts, want := range map[string]string{
		"[10.1.2.3]":                 "IP address",
		"[\"*.example.com\"]":        "wildcard",
		"[https://api.example.com/]": "a URL",
		"[api.example.com:99999]":    "no valid port",
		"[bad_name.example]":         "not a host name",
	} {
		text := `
upstreams:
  a:
    target: https://a.example
    hosts: ` + hosts + `
    token: {url: https://idp.example/token, client_id: id, client_secret: s3cret}
  b:
    target: https://other.example.net
    path_prefix: /b
    token: {url: https://idp.example/token, client_id: id, client_secret: s3cret}
`
		_, err := Parse([]byte(text), Options{NoEnvOverrides: true})
		if err == nil || !strings.Contains(err.Error(), "upstreams.") || !strings.Contains(err.Error(), want) {
			t.Errorf("hosts %s: got %v, want %q", hosts, err, want)
		}
	}
}

func writeUnconstrainedCA(t *testing.T, dir string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "any"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "ca-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// A host listed by two upstreams is a problem; a target's host that two
// upstreams share (one API by two prefixes) is reached by neither, unless
// one lists it; a listed host beats another's target.
func TestUpstreamHostsOwners(t *testing.T) {
	up := func(name, target, hosts string) string {
		return "  " + name + ":\n    target: " + target + "\n    path_prefix: /" + name + "\n    hosts: [" + hosts + "]\n" +
			"    token: {url: https://idp.example/token, client_id: id, client_secret: s3cret}\n"
	}
	_, err := Parse([]byte("upstreams:\n"+up("a", "https://a.example", "x.example")+up("b", "https://b.example", "x.example")), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), `x.example:443 is also listed by upstream "a"`) {
		t.Errorf("a host listed twice: %v", err)
	}
	cfg, err := Parse([]byte("upstreams:\n"+up("a", "https://shared.example", "")+up("b", "https://shared.example/v2", "")+
		up("c", "https://c.example", "b.example")+up("d", "https://b.example", "")), Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"a": nil, "b": nil, "c": {"b.example:443", "b.example:80", "c.example:443"}, "d": nil}
	for _, u := range cfg.Upstreams {
		if !reflect.DeepEqual(u.Hosts, want[u.Name]) {
			t.Errorf("%s: hosts %v, want %v", u.Name, u.Hosts, want[u.Name])
		}
	}
}

// A CA file that cannot be read is one problem, at its own key: pki.LoadCA,
// which reads both files, said it again for the certificate (in other
// words), and for the key said it under ca_cert_file.
func TestAnUnreadableCAFileIsOneProblem(t *testing.T) {
	for key, file := range map[string]string{"ca_cert_file": "ca.pem", "ca_key_file": "ca-key.pem"} {
		t.Run(key, func(t *testing.T) {
			_, err := forwardConfig(t, strings.Replace(forwardOn, key+": "+file, key+": missing.pem", 1), "example.com", "example.net")
			var problems Problems
			if !errors.As(err, &problems) || len(problems) != 1 || problems[0].Key != "forward_proxy."+key ||
				!strings.HasPrefix(problems[0].Message, "cannot read it: ") || !strings.Contains(problems[0].Message, "missing.pem") {
				t.Errorf("got %v\nwant one problem: forward_proxy.%s: cannot read it: ... missing.pem ...", err, key)
			}
		})
	}
}

// A pass_through item that takes several upstreams' hosts says so for
// each host, in the same order on every run: the hosts came from a map.
func TestPassThroughProblemsReadTheSameOnEveryRun(t *testing.T) {
	text := []byte(`
upstreams:
  a:
    target: https://a.example.com
    hosts: [b.example.com, c.example.com, d.example.com, e.example.com]
    token: {url: https://idp.example/token, client_id: id, client_secret: s3cret}
forward_proxy:
  pass_through: ["*.example.com"]
`)
	var first string
	for i := range 20 {
		_, err := Parse(text, Options{NoEnvOverrides: true})
		if err == nil || strings.Count(err.Error(), "forward_proxy.pass_through[0]: ") != 5 {
			t.Fatalf("got %v, want 5 problems of forward_proxy.pass_through[0], one for each host on 443", err)
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("load %d said\n%s\nthe first said\n%s", i+1, err, first)
		}
	}
}

// A CA key file that can be read but holds no key is the key's problem,
// said under ca_key_file, not under the certificate's key.
func TestACAKeyFileWithoutAKeyIsItsProblem(t *testing.T) {
	// proxy.yaml itself: mode 600, readable, and no key in it.
	_, err := forwardConfig(t, strings.Replace(forwardOn, "ca_key_file: ca-key.pem", "ca_key_file: proxy.yaml", 1), "example.com", "example.net")
	var problems Problems
	if !errors.As(err, &problems) || len(problems) != 1 || problems[0].Key != "forward_proxy.ca_key_file" ||
		!strings.Contains(problems[0].Message, "no PEM private key found") {
		t.Errorf("got %v\nwant one problem: forward_proxy.ca_key_file: ... no PEM private key found ...", err)
	}
}
