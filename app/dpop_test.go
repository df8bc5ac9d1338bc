package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeDPoPConfig(t *testing.T, store, dpop string) string {
	t.Helper()
	dir := t.TempDir()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if err := os.WriteFile(filepath.Join(dir, "dpop.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := store + "upstreams:\n  api:\n    target: https://api.example\n    token:\n      url: https://idp.example/token\n      client_id: id\n      client_secret: s\n      dpop:\n" + dpop
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCheck(t *testing.T, path string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := exit(&errs, check(path, Options{Stdout: &out, Stderr: &errs, LookupEnv: func(string) (string, bool) { return "", false }}))
	return code, errs.String()
}

// check parses the DPoP key as the proxy will, and says that a fleet
// must share it.
func TestCheckDPoP(t *testing.T) {
	const fleet = "store:\n  type: redis\n  url: redis://127.0.0.1:6379/0\n"
	warning := "upstreams.api.token.dpop.private_key_file: the replicas share their tokens through redis"
	if code, errs := runCheck(t, writeDPoPConfig(t, "", "        private_key_file: dpop.pem\n")); code != 0 || strings.Contains(errs, warning) {
		t.Fatalf("alone: %d %s", code, errs)
	}
	if code, errs := runCheck(t, writeDPoPConfig(t, fleet, "        private_key_file: dpop.pem\n")); code != 0 || !strings.Contains(errs, "warning: "+warning) {
		t.Fatalf("a fleet: %d %q, want a warning", code, errs)
	}
	code, errs := runCheck(t, writeDPoPConfig(t, "", "        private_key_file: dpop.pem\n        signing_alg: EdDSA\n"))
	if code != 2 || !strings.Contains(errs, "upstreams.api.token.dpop.signing_alg: unusable private key: signing_alg \"EdDSA\" does not fit the EC P-256 key") {
		t.Fatalf("a signing_alg that does not fit: %d %s", code, errs)
	}
}
