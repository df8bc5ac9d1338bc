package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// clientAuthDir writes the files the client-authentication configs name,
// and returns the directory they are relative to.
func clientAuthDir(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range []string{"key.pem", "tls.crt", "tls.key", "ca.crt", "pw"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("content of "+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadToken(t *testing.T, dir, tokenYAML string) (Token, error) {
	t.Helper()
	file := "upstreams:\n  api:\n    target: https://api.example\n    token:\n      url: https://idp.example/token\n      client_id: id\n" + tokenYAML
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, Options{NoEnvOverrides: true})
	if err != nil {
		return Token{}, err
	}
	return cfg.Upstreams[0].Token, nil
}

func TestClientAuthMethodsLoad(t *testing.T) {
	dir := clientAuthDir(t)
	in := func(name string) string { return filepath.Join(dir, name) }
	for _, tt := range []struct {
		name, yaml string
		want       func(*Token) // sets on a Token with the defaults what the yaml should give
	}{
		{"client_secret_jwt", "      auth_method: client_secret_jwt\n      client_secret: s3cret\n      signing_alg: HS512\n      key_id: k1\n",
			func(w *Token) {
				w.AuthMethod, w.ClientSecret, w.SigningAlg, w.KeyID = "client_secret_jwt", "s3cret", "HS512", "k1"
			}},
		{"private_key_jwt", "      auth_method: private_key_jwt\n      private_key_file: key.pem\n      key_id: k1\n      signing_alg: PS256\n      assertion_audience: https://idp.example/\n",
			func(w *Token) {
				w.AuthMethod, w.PrivateKeyFile, w.KeyID, w.SigningAlg, w.AssertionAudience = "private_key_jwt", in("key.pem"), "k1", "PS256", "https://idp.example/"
			}},
		{"private_key_jwt from the platform", "      auth_method: private_key_jwt\n      client_assertion_file: /var/run/secrets/tokens/idp\n",
			func(w *Token) { w.AuthMethod, w.ClientAssertionFile = "private_key_jwt", "/var/run/secrets/tokens/idp" }},
		{"tls_client_auth", "      auth_method: tls_client_auth\n      tls: {ca_file: ca.crt, cert_file: tls.crt, key_file: tls.key}\n",
			func(w *Token) {
				w.AuthMethod, w.TLS = "tls_client_auth", TLS{CAFile: in("ca.crt"), CertFile: in("tls.crt"), KeyFile: in("tls.key")}
			}},
		{"none", "      auth_method: none\n      grant_type: refresh_token\n",
			func(w *Token) { w.AuthMethod, w.GrantType, w.RedirectURI = "none", "refresh_token", defaultRedirectURI }},
		{"jwt-bearer signed", "      grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer\n      private_key_file: key.pem\n      scopes: [api]\n",
			func(w *Token) {
				w.GrantType, w.PrivateKeyFile, w.Scopes = grantJWTBearer, in("key.pem"), []string{"api"}
			}},
		{"jwt-bearer from a file, private_key_jwt", "      grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer\n      assertion_file: grant.jwt\n      auth_method: private_key_jwt\n      private_key_file: key.pem\n",
			func(w *Token) {
				w.GrantType, w.AssertionFile, w.AuthMethod, w.PrivateKeyFile = grantJWTBearer, in("grant.jwt"), "private_key_jwt", in("key.pem")
			}},
		{"token exchange", "      grant_type: urn:ietf:params:oauth:grant-type:token-exchange\n      subject_token_file: /var/run/secrets/tokens/sa\n      actor_token_file: actor\n      requested_token_type: urn:ietf:params:oauth:token-type:access_token\n      audience: [https://a, https://b]\n      resource: https://api.example/v1\n",
			func(w *Token) {
				w.GrantType, w.SubjectTokenFile, w.SubjectTokenType = grantTokenExchange, "/var/run/secrets/tokens/sa", tokenTypeJWT
				w.ActorTokenFile, w.ActorTokenType, w.RequestedTokenType = in("actor"), tokenTypeJWT, "urn:ietf:params:oauth:token-type:access_token"
				w.Audience, w.Resource = []string{"https://a", "https://b"}, []string{"https://api.example/v1"}
			}},
		{"password", "      grant_type: password\n      username: alice\n      password_file: pw\n      client_secret: s\n",
			func(w *Token) {
				w.GrantType, w.Username, w.Password, w.ClientSecret = "password", "alice", "content of pw", "s"
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadToken(t, dir, tt.yaml)
			if err != nil {
				t.Fatal(err)
			}
			want := Token{GrantType: "client_credentials", URL: "https://idp.example/token", ClientID: "id", AuthMethod: "client_secret_post",
				BodyFormat: "form", RefreshBefore: defaultRefreshBefore, TokenType: "Bearer", MinRefreshInterval: defaultMinRefreshInterval, Timeout: defaultTokenTimeout}
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestClientAuthProblems(t *testing.T) {
	dir := clientAuthDir(t)
	const tk = "upstreams.api.token."
	for _, tt := range []struct{ yaml, want string }{
		{"      auth_method: mtls\n      client_secret: s\n", tk + `auth_method: "mtls" is not allowed; write one of client_secret_post, client_secret_basic, client_secret_jwt, private_key_jwt, tls_client_auth, none`},
		{"      auth_method: private_key_jwt\n", tk + "private_key_file: private_key_jwt needs a key to sign with"},
		{"      auth_method: private_key_jwt\n      private_key_file: missing.pem\n", tk + "private_key_file: cannot read it"},
		{"      auth_method: private_key_jwt\n      private_key_file: key.pem\n      client_secret: s\n", tk + "client_secret: auth_method private_key_jwt sends no client secret"},
		{"      auth_method: private_key_jwt\n      private_key_file: key.pem\n      client_assertion_file: /t\n", tk + "client_assertion_file: set either private_key_file"},
		{"      auth_method: private_key_jwt\n      private_key_file: key.pem\n      signing_alg: RS257\n", tk + `signing_alg: "RS257" is not allowed`},
		{"      auth_method: client_secret_jwt\n", tk + "client_secret: required"},
		{"      auth_method: client_secret_jwt\n      client_secret: s\n      signing_alg: RS256\n", tk + "signing_alg: client_secret_jwt signs with the client secret: write HS256"},
		{"      client_secret: s\n      private_key_file: key.pem\n", tk + "private_key_file: is used with auth_method: private_key_jwt"},
		{"      client_secret: s\n      key_id: k\n", tk + "key_id: describes the assertions authproxy signs"},
		{"      client_secret: s\n      client_assertion_file: /t\n", tk + "client_assertion_file: goes with auth_method: private_key_jwt"},
		{"      auth_method: tls_client_auth\n", tk + "tls.cert_file: tls_client_auth presents a client certificate"},
		{"      auth_method: tls_client_auth\n      tls: {cert_file: tls.crt}\n", tk + "tls.key_file: required with cert_file"},
		{"      client_secret: s\n      tls: {ca_file: nope.crt}\n", tk + "tls.ca_file: cannot read it"},
		{"      client_secret: s\n      tls: {ca_file: ca.crt, server_name: x}\n", tk + `tls.server_name: unknown key`},
		{"      auth_method: none\n      client_secret: s\n", tk + "client_secret: auth_method none sends no client secret"},
		{"      grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer\n", tk + "assertion_file: the jwt-bearer grant presents an assertion"},
		{"      client_secret: s\n      assertion_file: /a\n", tk + "assertion_file: goes with grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer"},
		{"      grant_type: urn:ietf:params:oauth:grant-type:token-exchange\n", tk + "subject_token_file: required for token exchange"},
		{"      grant_type: urn:ietf:params:oauth:grant-type:token-exchange\n      subject_token_file: /s\n      actor_token_type: urn:x\n", tk + "actor_token_type: goes with actor_token_file"},
		{"      grant_type: urn:ietf:params:oauth:grant-type:token-exchange\n      subject_token_file: /s\n      subject_token_type: jwt\n", tk + `subject_token_type: "jwt" is not a token type URI`},
		{"      client_secret: s\n      subject_token_file: /s\n", tk + "subject_token_file: goes with grant_type: urn:ietf:params:oauth:grant-type:token-exchange"},
		{"      grant_type: password\n", tk + "username: required for grant_type: password"},
		{"      grant_type: password\n      username: u\n", tk + "password: required"},
		{"      client_secret: s\n      username: u\n", tk + "username: goes with grant_type: password"},
		{"      client_secret: s\n      audience: a\n      params: {audience: b}\n", tk + "params.audience: is also set as token.audience"},
		{"      client_secret: s\n      resource: not-a-uri\n", tk + `resource: "not-a-uri" is not an absolute URI`},
		{"      grant_type: saml2-bearer\n      client_secret: s\n", tk + `grant_type: "saml2-bearer" is not allowed; write one of client_credentials, refresh_token, password, urn:ietf:params:oauth:grant-type:jwt-bearer, urn:ietf:params:oauth:grant-type:token-exchange`},
	} {
		_, err := loadToken(t, dir, tt.yaml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v\nwant %q", tt.yaml, err, tt.want)
		}
	}
}

func TestUpstreamTLS(t *testing.T) {
	dir := clientAuthDir(t)
	write := func(upstreamYAML string) (*Config, error) {
		file := "upstreams:\n  api:\n    target: https://api.internal\n" + upstreamYAML + "    token: {url: https://idp/t, client_id: i, client_secret: s}\n"
		path := filepath.Join(dir, "proxy.yaml")
		os.WriteFile(path, []byte(file), 0o600)
		return Load(path, Options{NoEnvOverrides: true})
	}
	cfg, err := write("    tls: {ca_file: ca.crt, cert_file: tls.crt, key_file: tls.key, server_name: api.internal.example}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), ServerName: "api.internal.example"}
	if got := cfg.Upstreams[0].TLS; got != want {
		t.Errorf("tls %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"    tls: {key_file: tls.key}\n", "upstreams.api.tls.cert_file: required with key_file"},
		{"    tls: {insecure_skip_verify: true}\n", "upstreams.api.tls.insecure_skip_verify: unknown key; the keys here are ca_file, cert_file, key_file, server_name"},
	} {
		if _, err := write(tt.yaml); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
