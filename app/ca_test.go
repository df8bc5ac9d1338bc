package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/pki"
)

func TestCACreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), Options{Args: args, Stdout: &out, Stderr: &errOut})
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("ca", "create", dir, "--hosts", "api.redgifs.com, API.Example.com.")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"curl", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "keytool", "docker run -v", ":ro", "ca_key_file:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the instructions do not mention %s:\n%s", want, out)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, pki.KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, pki.CertFileName), filepath.Join(dir, pki.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ca.Cert.PermittedDNSDomains, ","); got != "api.redgifs.com,api.example.com" || !ca.Cert.PermittedDNSDomainsCritical {
		t.Errorf("constraints %q (critical %v)", got, ca.Cert.PermittedDNSDomainsCritical)
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("the key was printed")
	}
	// Never over an existing CA; and usage errors are usage errors.
	if code, _, errOut := run("ca", "create", dir, "--hosts", "x.example"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("over an existing CA: %d %s", code, errOut)
	}
	for _, args := range [][]string{{"ca", "create", "--hosts", "x.example"}, {"ca", "create", t.TempDir()}, {"ca", "create", t.TempDir(), "--hosts", "10.0.0.1"},
		{"ca", "delete", t.TempDir(), "--hosts", "x.example"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// --if-missing is for a container that makes the CA at every start: a CA
// already in DIR that permits the hosts is kept as it is, one that does
// not is an error, and none is made as without the flag.
func TestCACreateIfMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), Options{Args: args, Stdout: &out, Stderr: &errOut})
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := run("ca", "create", dir, "--hosts", "api.redgifs.test", "--if-missing"); code != 0 {
		t.Fatalf("a first --if-missing: exit %d: %s", code, errOut)
	}
	before, err := os.ReadFile(filepath.Join(dir, pki.CertFileName))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("ca", "create", dir, "--hosts", "api.redgifs.test", "--if-missing")
	if code != 0 || !strings.Contains(out, "kept") {
		t.Errorf("a second --if-missing: exit %d %q %s", code, out, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, pki.CertFileName)); !bytes.Equal(before, after) {
		t.Error("--if-missing replaced the CA")
	}
	if code, _, errOut := run("ca", "create", dir, "--hosts", "api.redgifs.test,api.other.test", "--if-missing"); code != 1 || !strings.Contains(errOut, "api.other.test") {
		t.Errorf("--if-missing over a CA that does not permit a host: exit %d %s", code, errOut)
	}
	os.Chmod(filepath.Join(dir, pki.KeyFileName), 0o644)
	if code, _, errOut := run("ca", "create", dir, "--hosts", "api.redgifs.test", "--if-missing"); code != 1 {
		t.Errorf("--if-missing over a CA whose key others can read: exit %d %s", code, errOut)
	}
}
