package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/app"
	"github.com/authproxy/authproxy/internal/testpki"
)

// An internal API that requires mutual TLS, under a name that is not its
// address: the proxy trusts its private CA, checks its certificate
// against server_name, presents the client certificate, and takes up a
// rotated one without a restart.
func TestUpstreamMutualTLS(t *testing.T) {
	serverCA, clientCA := testpki.NewCA(t, "internal server CA"), testpki.NewCA(t, "internal client CA")
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.TLS.PeerCertificates[0].Subject.CommonName, r.Header.Get("Authorization"))
	}))
	api.TLS = &tls.Config{
		Certificates: []tls.Certificate{serverCA.Issue(t, testpki.Leaf{Server: true, DNSNames: []string{"api.internal.example"}}).TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool(),
	}
	api.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	api.StartTLS()
	t.Cleanup(api.Close)
	tokens := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"internal-token","token_type":"Bearer","expires_in":3600}`)
	}))
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Rename(path+".tmp", path)
		return path
	}
	v1 := clientCA.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: "proxy-v1"}})
	v2 := clientCA.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: "proxy-v2"}})
	ca, cert, key := write("ca.crt", serverCA.PEM), write("tls.crt", v1.CertPEM), write("tls.key", v1.KeyPEM)
	config := func(name, tlsLine string) string {
		return upstream(name, api.URL, tokens+"/token", "      client_id: c\n      client_secret: s\n") + "    " + tlsLine + "\n"
	}
	cfg := realIdPConfig("") +
		config("internal", "tls: {ca_file: "+ca+", cert_file: "+cert+", key_file: "+key+", server_name: api.internal.example}") +
		config("noname", "tls: {ca_file: "+ca+", cert_file: "+cert+", key_file: "+key+"}") +
		config("nocert", "tls: {ca_file: "+ca+", server_name: api.internal.example}")
	p := runProxy(t, dir, cfg)
	if status, body := p.get("/internal/x"); status != 200 || body != "proxy-v1|Bearer internal-token" {
		t.Fatalf("mutual TLS: %d %s", status, body)
	}
	// The server's certificate is checked: not for 127.0.0.1, and no
	// setting skips that. Without a client certificate the API refuses.
	for _, name := range []string{"noname", "nocert"} {
		if status, body := p.get("/" + name + "/x"); status != 502 || !strings.Contains(body, "upstream_unreachable") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	write("tls.crt", v2.CertPEM)
	write("tls.key", v2.KeyPEM)
	waitFor(t, "the rotated client certificate", func() bool {
		status, body := p.get("/internal/x")
		if status != 200 {
			t.Fatalf("during the rotation: %d %s", status, body)
		}
		return strings.HasPrefix(body, "proxy-v2|")
	})
}

// authproxy check parses the keys and certificates a config names, says
// which key is wrong and what to write, and warns of what is only risky.
func TestCheckParsesKeysAndCertificates(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		return path
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	ca := testpki.NewCA(t, "check CA")
	pair := ca.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: "c"}})
	write("rsa.pem", rsaPEM, 0o644)
	write("garbage.pem", []byte("not a key"), 0o600)
	write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), 0o600)
	write("tls.crt", pair.CertPEM, 0o644)
	write("tls.key", pair.KeyPEM, 0o640)
	expired := ca.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: "old"}, NotAfter: time.Now().Add(-time.Minute)})
	write("expired.crt", expired.CertPEM, 0o644)
	write("expired.key", expired.KeyPEM, 0o600)
	write("ca.crt", ca.PEM, 0o644)
	write("not-a-ca.crt", []byte("hello"), 0o644)

	run := func(cfg string) (int, string) {
		path := write("proxy.yaml", []byte(cfg), 0o600)
		var out strings.Builder
		code := app.Run(context.Background(), app.Options{Args: []string{"check", "--config", path}, Stdout: &out, Stderr: &out,
			LookupEnv: func(string) (string, bool) { return "", false }})
		return code, out.String()
	}
	up := func(name, lines string) string {
		return upstream(name, "https://api.example", "https://idp.example/token", "      client_id: c\n"+lines)
	}
	code, out := run("upstreams:\n" +
		up("wrongalg", "      auth_method: private_key_jwt\n      private_key_file: rsa.pem\n      signing_alg: ES256\n") +
		up("garbage", "      auth_method: private_key_jwt\n      private_key_file: garbage.pem\n") +
		up("mismatch", "      auth_method: tls_client_auth\n      tls: {cert_file: tls.crt, key_file: ec.pem}\n") +
		up("badca", "      client_secret: s\n      tls: {ca_file: not-a-ca.crt}\n") +
		up("hs", "      auth_method: client_secret_jwt\n      client_secret: short\n") +
		up("expired", "      auth_method: tls_client_auth\n      tls: {cert_file: expired.crt, key_file: expired.key}\n"))
	for _, want := range []string{
		`upstreams.wrongalg.token.signing_alg: unusable private key: signing_alg "ES256" does not fit the RSA 2048-bit key; write RS256 or PS256`,
		"upstreams.garbage.token.private_key_file: " + filepath.Join(dir, "garbage.pem") + ": unusable private key: no PEM private key found",
		"upstreams.mismatch.token.tls: unusable TLS file: cert_file " + filepath.Join(dir, "tls.crt"),
		"private key does not match public key",
		"upstreams.badca.token.tls: unusable TLS file: ca_file " + filepath.Join(dir, "not-a-ca.crt") + " holds no PEM certificate",
		"warning: upstreams.wrongalg.token.private_key_file: " + filepath.Join(dir, "rsa.pem") + " can be read by its group and others (mode 0644)",
		// go-jose refuses to sign with it: every token request would fail.
		"upstreams.hs.token.client_secret: the client secret is 5 bytes; HS256 needs 32 or more (RFC 7518 3.2)",
		"upstreams.expired.token.tls.cert_file: the certificate in " + filepath.Join(dir, "expired.crt") + " (subject \"CN=old\") expired at",
	} {
		if code != 2 || !strings.Contains(out, want) {
			t.Errorf("exit %d; the output does not say %q:\n%s", code, want, out)
		}
	}
	// What is only risky is a warning: the config passes.
	code, out = run("upstreams:\n" +
		up("rsa", "      auth_method: private_key_jwt\n      private_key_file: rsa.pem\n      signing_alg: PS256\n") +
		up("mtls", "      auth_method: tls_client_auth\n      tls: {ca_file: ca.crt, cert_file: tls.crt, key_file: tls.key}\n") +
		up("k8s", "      grant_type: urn:ietf:params:oauth:grant-type:token-exchange\n      subject_token_file: /var/run/secrets/tokens/none-here\n"))
	for _, want := range []string{
		"OK, 3 upstream(s)",
		"warning: upstreams.rsa.token.private_key_file:", "chmod 600 " + filepath.Join(dir, "rsa.pem"),
		"warning: upstreams.mtls.token.tls.key_file:", "can be read by its group (mode 0640)",
		"warning: upstreams.k8s.token.subject_token_file: unusable token file: read /var/run/secrets/tokens/none-here", "fine if the platform writes it later",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d; the output does not say %q:\n%s", code, want, out)
		}
	}

	// serve says the same at start: an operator who never runs check
	// still hears of a key that others can read. (No token is fetched
	// before a request; the addresses are loopback all the same.)
	p := runProxy(t, dir, realIdPConfig("")+upstream("rsa", "http://127.0.0.1:1", "http://127.0.0.1:1/token",
		"      client_id: c\n      auth_method: private_key_jwt\n      private_key_file: rsa.pem\n"))
	p.stop()
	if want := "upstreams.rsa.token.private_key_file: " + filepath.Join(dir, "rsa.pem") + " can be read by its group and others (mode 0644)"; !strings.Contains(p.logs.String(), want) {
		t.Errorf("serve's log does not say %q:\n%s", want, p.logs)
	}
}
