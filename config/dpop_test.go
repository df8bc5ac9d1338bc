package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadDPoP(t *testing.T, dir, yaml string) (*Config, error) {
	t.Helper()
	file := "upstreams:\n  api:\n    target: https://api.example\n    token:\n      url: https://idp.example/token\n      client_id: id\n      client_secret: s\n" + yaml
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path, Options{NoEnvOverrides: true})
}

func TestDPoPLoads(t *testing.T) {
	dir := clientAuthDir(t)
	cfg, err := loadDPoP(t, dir, "      dpop:\n        private_key_file: key.pem\n        signing_alg: EdDSA\n")
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams[0]
	if d := u.Token.DPoP; d == nil || d.PrivateKeyFile != filepath.Join(dir, "key.pem") || d.SigningAlg != "EdDSA" {
		t.Fatalf("dpop %+v", d)
	}
	if u.Token.TokenType != "DPoP" || u.Inject.Format != "{token_type} {token}" || u.Inject.Header != "Authorization" {
		t.Fatalf("token_type %q, inject %+v: want DPoP in Authorization", u.Token.TokenType, u.Inject)
	}
	for _, yaml := range []string{"      token_type: dpop\n", "    inject: {format: \"DPoP {token}\"}\n"} {
		if _, err := loadDPoP(t, dir, "      dpop: {private_key_file: key.pem}\n"+yaml); err != nil {
			t.Errorf("%q: %v", yaml, err)
		}
	}
}

func TestDPoPProblems(t *testing.T) {
	dir := clientAuthDir(t)
	for _, tt := range []struct{ yaml, want string }{
		{"      dpop: {signing_alg: ES256}\n", "upstreams.api.token.dpop.private_key_file: required"},
		{"      dpop: {private_key_file: nowhere.pem}\n", "upstreams.api.token.dpop.private_key_file:"},
		{"      dpop: {private_key_file: key.pem, signing_alg: HS256}\n", "upstreams.api.token.dpop.signing_alg: \"HS256\" signs with a shared secret"},
		{"      dpop: {private_key_file: key.pem, signing_alg: ES999}\n", "upstreams.api.token.dpop.signing_alg:"},
		{"      dpop: {private_key_file: key.pem}\n      token_type: Bearer\n", "upstreams.api.token.token_type: \"Bearer\", but token.dpop binds the tokens to a key"},
		{"      dpop: {private_key_file: key.pem}\n    inject: {format: \"Bearer {token}\"}\n", "upstreams.api.inject.format: \"Bearer {token}\": a DPoP-bound token is sent as `Authorization: DPoP <token>`"},
		{"      dpop: {private_key_file: key.pem}\n    inject: {header: X-Token}\n", "upstreams.api.inject.header: \"X-Token\": a DPoP-bound token goes in Authorization"},
		{"      dpop: {private_key_file: key.pem}\n    inject: {headers: {DPoP: x}}\n", "upstreams.api.inject.headers.dpop: the proxy sets DPoP"},
		{"      dpop: {private_key_file: key.pem, signing_algo: ES256}\n", "upstreams.api.token.dpop.signing_algo"},
	} {
		_, err := loadDPoP(t, dir, tt.yaml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
