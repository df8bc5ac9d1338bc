package integration

// Point 7 of issue 15: no private key, client assertion, subject or actor
// token, password or certificate key reaches the logs, an error body, the
// metrics or /status, in any encoding, also when the token endpoint
// echoes the whole request back, fails, or a token file is missing.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/internal/oidctest"
)

// echoEndpoint is a hostile token endpoint: it refuses every request
// with an error_description holding the whole request, form and headers,
// and keeps the forms it got.
type echoEndpoint struct {
	url   string
	mu    sync.Mutex
	forms []url.Values
}

func newEchoEndpoint(t *testing.T) *echoEndpoint {
	e := &echoEndpoint{}
	e.url = newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		e.mu.Lock()
		e.forms = append(e.forms, form)
		e.mu.Unlock()
		headers, _ := json.Marshal(r.Header)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request",
			"error_description": "you sent " + string(body) + " with " + string(headers) + " that is " + fmt.Sprint(form)})
	})) + "/token"
	return e
}

// keyForms are the ways a private key could be written out: its PEM, each
// line of the PEM's body, and its private numbers as a JWK would hold them.
func keyForms(t *testing.T, pemBytes []byte) []string {
	t.Helper()
	forms := []string{strings.TrimSpace(string(pemBytes))}
	for _, line := range strings.Split(string(pemBytes), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			forms = append(forms, line)
		}
	}
	block, _ := pem.Decode(pemBytes)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	forms = append(forms, base64.StdEncoding.EncodeToString(block.Bytes)[:40])
	switch k := key.(type) {
	case *rsa.PrivateKey:
		forms = append(forms, b64(k.D.Bytes()), b64(k.Primes[0].Bytes()), b64(k.Primes[1].Bytes()), k.D.String()[:40])
	case *ecdsa.PrivateKey:
		d, _ := k.Bytes()
		forms = append(forms, b64(d), fmt.Sprintf("%x", d))
	case ed25519.PrivateKey:
		forms = append(forms, b64(k.Seed()), fmt.Sprintf("%x", k.Seed()))
	}
	return forms
}

// tokenForms are the ways a token could be written out: itself, and for a
// JWT its signature alone.
func tokenForms(tok string) []string {
	forms := []string{tok, url.QueryEscape(tok)}
	if parts := strings.Split(tok, "."); len(parts) == 3 {
		forms = append(forms, parts[2])
	}
	return forms
}

func TestRealServerNoCredentialLeaks(t *testing.T) {
	rsaKey, ecKey := newSigner(t, "rsa"), newSigner(t, "ec")
	all := []string{"client_credentials", oidctest.GrantJWTBearer, oidctest.GrantTokenExchange, oidctest.GrantPassword}
	idp := startRealIdP(t, oidctest.Options{Users: map[string]string{"alice": "alice-password-4c1d"}, Clients: []oidctest.Client{
		{ID: "pkjwt", AuthMethod: "private_key_jwt", Keys: jwks(rsaKey.Public(), "rsa"), GrantTypes: all},
		{ID: "hsjwt", Secret: realSecret, AuthMethod: "client_secret_jwt", GrantTypes: all},
		{ID: "mtls", AuthMethod: "tls_client_auth", SubjectDN: "CN=mtls,O=authproxy tests", GrantTypes: all},
		{ID: "edjwt", AuthMethod: "private_key_jwt", Keys: jwks(ecKey.Public(), "ec"), GrantTypes: all},
	}})
	echo := newEchoEndpoint(t)
	pair := idp.ClientCert(pkix.Name{CommonName: "mtls", Organization: []string{"authproxy tests"}})
	rsaPEM, ecPEM := keyPEM(t, rsaKey), keyPEM(t, ecKey)
	rsaFile, ecFile := idp.write(t, "rsa.pem", rsaPEM, 0o600), idp.write(t, "ec.pem", ecPEM, 0o600)
	certFile, certKeyFile := idp.write(t, "tls.crt", pair.CertPEM, 0o644), idp.write(t, "tls.key", pair.KeyPEM, 0o600)
	const subjectToken, actorToken = "subject-token-7f3a9c2e-never-shown", "actor-token-0b5d81aa-never-shown"
	subjectFile, actorFile := idp.write(t, "subject", []byte(subjectToken), 0o600), idp.write(t, "actor", []byte(actorToken), 0o600)
	passwordFile := idp.write(t, "password", []byte("alice-password-4c1d\n"), 0o600)
	ca := "      tls: {ca_file: " + idp.caFile + "}\n"
	exchange := "      grant_type: " + oidctest.GrantTokenExchange + "\n      subject_token_file: " + subjectFile + "\n      actor_token_file: " + actorFile + "\n"
	password := "      grant_type: password\n      username: alice\n      password_file: " + passwordFile + "\n"

	cfg := realIdPConfig("")
	for _, u := range []struct{ name, tokenURL, client, lines string }{
		{"pkjwt", idp.TokenURL, "pkjwt", "      auth_method: private_key_jwt\n      private_key_file: " + rsaFile + "\n      key_id: rsa\n" + exchange + ca},
		{"bearer", idp.TokenURL, "edjwt", "      auth_method: private_key_jwt\n      private_key_file: " + ecFile + "\n      key_id: ec\n" +
			"      grant_type: " + oidctest.GrantJWTBearer + "\n" + ca},
		{"hsjwt", idp.TokenURL, "hsjwt", "      auth_method: client_secret_jwt\n      client_secret: " + realSecret + "\n" + password + ca},
		{"mtls", idp.TokenURL, "mtls", "      auth_method: tls_client_auth\n      tls: {ca_file: " + idp.caFile + ", cert_file: " + certFile + ", key_file: " + certKeyFile + "}\n"},
		{"echo-exchange", echo.url, "pkjwt", "      auth_method: private_key_jwt\n      private_key_file: " + rsaFile + "\n" + exchange},
		{"echo-password", echo.url, "hsjwt", "      auth_method: client_secret_jwt\n      client_secret: " + realSecret + "\n" + password},
		{"echo-basic", echo.url, "basic", "      auth_method: client_secret_basic\n      client_secret: " + realSecret + "\n"},
		{"missing", idp.TokenURL, "edjwt", "      auth_method: private_key_jwt\n      client_assertion_file: " + idp.dir + "/not-written-yet\n" + ca},
	} {
		cfg += upstream(u.name, idp.api(t, u.client), u.tokenURL, "      client_id: "+u.client+"\n"+u.lines)
	}
	// The first token request fails: a 503 the proxy answers, then backs
	// off from.
	idp.FailNext(http.StatusServiceUnavailable, 1)
	p := runProxy(t, idp.dir, cfg)

	if status, body := p.get("/pkjwt/x"); status != 503 || !strings.Contains(body, "token_unavailable") {
		t.Errorf("during the injected 503: %d %s", status, body)
	}
	for _, name := range []string{"bearer", "hsjwt", "mtls"} {
		if status, a, body := p.getAPI("/" + name + "/x"); status != 200 || a.ClientID == "" {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	waitFor(t, "the token after the backoff", func() bool { status, _ := p.get("/pkjwt/x"); return status == 200 })
	for _, name := range []string{"echo-exchange", "echo-password", "echo-basic"} {
		if status, body := p.get("/" + name + "/x"); status != 502 || !strings.Contains(body, "[redacted]") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	status, body := p.get("/missing/x")
	if status != 502 || !strings.Contains(body, "not-written-yet") {
		t.Errorf("a missing assertion file: %d %s", status, body)
	}
	if status, body := p.get(p.admin + "/readyz"); status != 503 || !strings.Contains(body, `"missing":"token_credentials_unreadable"`) {
		t.Errorf("/readyz: %d %s", status, body)
	}
	p.get(p.admin + "/status")
	p.get(p.admin + "/metrics")
	p.stop()

	secrets := map[string][]string{
		"the RSA private key": keyForms(t, rsaPEM), "the EC private key": keyForms(t, ecPEM),
		"the certificate's key": keyForms(t, pair.KeyPEM), "the subject token": tokenForms(subjectToken),
		"the actor token": tokenForms(actorToken), "the password": {"alice-password-4c1d"}, "the client secret": tokenForms(realSecret),
	}
	sent := 0
	note := func(what, tok string) {
		if tok != "" {
			secrets[what] = append(secrets[what], tokenForms(tok)...)
			sent++
		}
	}
	for _, r := range idp.Records().TokenRequests {
		note("a client assertion", r.Params.Get("client_assertion"))
		note("a grant assertion", r.Params.Get("assertion"))
	}
	echo.mu.Lock()
	for _, f := range echo.forms {
		note("an echoed client assertion", f.Get("client_assertion"))
	}
	echo.mu.Unlock()
	if sent < 7 {
		t.Errorf("only %d assertions were sent; the test did not exercise what it checks", sent)
	}
	p.seenMu.Lock()
	shown := map[string]string{"the logs": p.logs.String(), "the error bodies, headers, /readyz, /status and /metrics": strings.Join(p.seen, "\n")}
	p.seenMu.Unlock()
	for where, text := range shown {
		for what, forms := range secrets {
			for _, f := range forms {
				if len(f) >= 8 && strings.Contains(text, f) {
					t.Errorf("%s hold %s (%.10s...)", where, what, f)
					break
				}
			}
		}
	}
}
