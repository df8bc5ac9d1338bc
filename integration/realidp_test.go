package integration

// The proxy, run as a user runs it, against a real authorization server
// (oidc-provider): every client authentication method and grant end to
// end, authproxy login with PKCE, and no credential anywhere it shows.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authproxy/authproxy/internal/oidctest"
)

const realSecret = "a-client-secret-of-at-least-32-bytes-0123"

func newSigner(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ec":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPEM(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// platformJWT is what a platform writes for a workload: a JWT signed with
// the platform's key, iss = sub = the client, aud the token endpoint.
func platformJWT(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, kid, clientID, aud string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud},
		ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwks(key crypto.PublicKey, kid string) []jose.JSONWebKey {
	return []jose.JSONWebKey{{Key: key, KeyID: kid, Use: "sig"}}
}

// One upstream per client authentication method and per grant, each
// behind an API that accepts only the tokens the provider issued to that
// upstream's client.
func TestRealServerEveryMethodThroughTheProxy(t *testing.T) {
	rsaKey, platformKey := newSigner(t, "rsa"), newSigner(t, "ec")
	all := []string{"client_credentials", oidctest.GrantJWTBearer, oidctest.GrantTokenExchange, oidctest.GrantPassword}
	idp := startRealIdP(t, oidctest.Options{Users: map[string]string{"alice": "alice-password"}, Clients: []oidctest.Client{
		{ID: "post", Secret: realSecret, AuthMethod: "client_secret_post"},
		{ID: "basic", Secret: realSecret, AuthMethod: "client_secret_basic"},
		{ID: "hsjwt", Secret: realSecret, AuthMethod: "client_secret_jwt"},
		{ID: "pkjwt", AuthMethod: "private_key_jwt", Keys: jwks(rsaKey.Public(), "app-key")},
		{ID: "platform", AuthMethod: "private_key_jwt", Keys: jwks(platformKey.Public(), "platform")},
		{ID: "mtls", AuthMethod: "tls_client_auth", SubjectDN: "CN=mtls,O=authproxy tests", GrantTypes: all},
		{ID: "bearer", AuthMethod: "private_key_jwt", Keys: jwks(rsaKey.Public(), "app-key"), GrantTypes: all},
		{ID: "exchange", Secret: realSecret, AuthMethod: "client_secret_basic", GrantTypes: all},
		{ID: "legacy", Secret: realSecret, AuthMethod: "client_secret_jwt", GrantTypes: all},
	}})
	pair := idp.ClientCert(pkix.Name{CommonName: "mtls", Organization: []string{"authproxy tests"}})
	keyFile := idp.write(t, "app.pem", keyPEM(t, rsaKey), 0o600)
	certFile, certKey := idp.write(t, "tls.crt", pair.CertPEM, 0o644), idp.write(t, "tls.key", pair.KeyPEM, 0o600)
	saToken := idp.write(t, "sa-token", []byte(platformJWT(t, platformKey, jose.ES256, "platform", "platform", idp.TokenURL)), 0o600)
	grantJWT := idp.write(t, "grant.jwt", []byte(platformJWT(t, platformKey, jose.ES256, "platform", "workload@example", idp.TokenURL)), 0o600)
	subject := idp.write(t, "subject", []byte("the-platform-subject-token"), 0o600)
	password := idp.write(t, "password", []byte("alice-password\n"), 0o600)
	ca := "      tls: {ca_file: " + idp.caFile + "}\n"

	cfg := realIdPConfig("")
	for name, lines := range map[string]string{
		"post":     "      client_secret: " + realSecret + "\n" + ca,
		"basic":    "      client_secret: " + realSecret + "\n      auth_method: client_secret_basic\n" + ca,
		"hsjwt":    "      client_secret: " + realSecret + "\n      auth_method: client_secret_jwt\n" + ca,
		"pkjwt":    "      auth_method: private_key_jwt\n      private_key_file: " + keyFile + "\n      key_id: app-key\n" + ca,
		"platform": "      auth_method: private_key_jwt\n      client_assertion_file: " + saToken + "\n" + ca,
		"mtls": "      auth_method: tls_client_auth\n      tls: {ca_file: " + idp.caFile + ", cert_file: " + certFile +
			", key_file: " + certKey + "}\n",
		"bearer": "      grant_type: " + oidctest.GrantJWTBearer + "\n      assertion_file: " + grantJWT +
			"\n      auth_method: private_key_jwt\n      private_key_file: " + keyFile + "\n      key_id: app-key\n" + ca,
		"exchange": "      grant_type: " + oidctest.GrantTokenExchange + "\n      subject_token_file: " + subject +
			"\n      client_secret: " + realSecret + "\n      auth_method: client_secret_basic\n      audience: [https://api.example, https://other.example]\n" + ca,
		"legacy": "      grant_type: password\n      username: alice\n      password_file: " + password +
			"\n      client_secret: " + realSecret + "\n      auth_method: client_secret_jwt\n" + ca,
	} {
		cfg += upstream(name, idp.api(t, name), idp.TokenURL, "      client_id: "+name+"\n"+lines)
	}
	p := runProxy(t, idp.dir, cfg)

	want := map[string]string{"post": "client_secret_post", "basic": "client_secret_basic", "hsjwt": "client_secret_jwt",
		"pkjwt": "private_key_jwt", "platform": "private_key_jwt", "mtls": "tls_client_auth", "bearer": "private_key_jwt",
		"exchange": "client_secret_basic", "legacy": "client_secret_jwt"}
	for name := range want {
		if status, a, body := p.getAPI("/" + name + "/hello"); status != 200 || a.ClientID != name || a.Path != "/hello" {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	got := map[string]string{}
	for _, r := range idp.Records().TokenRequests {
		if r.Status != 200 {
			t.Errorf("%s: token request answered %d %s", r.Params.Get("client_id"), r.Status, r.Error)
		}
		got[r.ClientID] = r.AuthMethod
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the provider authenticated\n %v, want\n %v", got, want)
	}
	grants := map[string]oidctest.GrantRequest{}
	for _, g := range idp.Records().Grants {
		grants[g.ClientID] = g
	}
	if g := grants["exchange"]; g.Params.Get("subject_token") != "the-platform-subject-token" || len(g.Params["audience"]) != 2 {
		t.Errorf("token exchange: %+v", g.Params)
	}
	if g := grants["legacy"]; g.Params.Get("username") != "alice" || g.GrantType != "password" {
		t.Errorf("password grant: %+v", g)
	}
	if g := grants["bearer"]; !strings.HasPrefix(g.Params.Get("assertion"), "ey") || g.AuthMethod != "private_key_jwt" {
		t.Errorf("jwt-bearer: %+v", g)
	}
}

// loginWith runs `authproxy login NAME` in process, plays the browser at
// the provider (which logs in and consents on its own), delivers the
// redirect to the command, and returns the authorize URL it printed.
func loginWith(t *testing.T, idp *realIdP, configPath, name, redirect string) *url.URL {
	t.Helper()
	authURL, exit, out := startLogin(configPath, name)
	if !strings.HasPrefix(authURL, "https://") {
		t.Fatalf("login printed no URL: exit %d\n%s", <-exit, out.String())
	}
	back := idp.Authorize(authURL, redirect)
	resp, err := http.Get(redirect + "?" + back.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := <-exit; code != 0 || resp.StatusCode != 200 {
		t.Fatalf("login %s: exit %d, page %d\n%s", name, code, resp.StatusCode, out.String())
	}
	u, _ := url.Parse(authURL)
	return u
}

// Point 5: `authproxy login` with PKCE, then the proxy refreshes on its
// own, the provider rotating the refresh token every time; the client
// authenticates with private_key_jwt throughout (and a public client,
// auth_method none, the same way).
func TestRealServerLoginWithPKCEThenRotation(t *testing.T) {
	key := newSigner(t, "ed25519")
	redirects := map[string]string{}
	for _, name := range []string{"user", "public"} {
		redirects[name] = fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	}
	codeGrants := []string{"authorization_code", "refresh_token"}
	idp := startRealIdP(t, oidctest.Options{AccessTokenTTL: 2 * time.Second, Clients: []oidctest.Client{
		{ID: "user", AuthMethod: "private_key_jwt", Keys: jwks(key.Public(), "k"), GrantTypes: codeGrants, RedirectURIs: []string{redirects["user"]}},
		{ID: "public", AuthMethod: "none", GrantTypes: codeGrants, RedirectURIs: []string{redirects["public"]}},
	}})
	keyFile := idp.write(t, "user.pem", keyPEM(t, key), 0o600)
	common := "      grant_type: refresh_token\n      authorize_url: " + idp.AuthorizeURL + "\n      scopes: [openid, offline_access]\n" +
		"      refresh_before: 1s\n      tls: {ca_file: " + idp.caFile + "}\n"
	cfg := realIdPConfig("") +
		upstream("user", idp.api(t, "user"), idp.TokenURL, "      client_id: user\n      auth_method: private_key_jwt\n      private_key_file: "+keyFile+
			"\n      key_id: k\n      redirect_uri: "+redirects["user"]+"\n"+common) +
		upstream("public", idp.api(t, "public"), idp.TokenURL, "      client_id: public\n      auth_method: none\n      redirect_uri: "+redirects["public"]+"\n"+common)
	configPath := filepath.Join(idp.dir, "proxy.yaml")
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	challenges := map[string]string{}
	for _, name := range []string{"user", "public"} {
		u := loginWith(t, idp, configPath, name, redirects[name])
		if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			t.Errorf("%s: the authorize URL asks for no S256 challenge: %s", name, u)
		}
		challenges[name] = u.Query().Get("code_challenge")
	}
	p := runProxy(t, idp.dir, cfg)
	for _, name := range []string{"user", "public"} {
		if status, a, body := p.getAPI("/" + name + "/me"); status != 200 || a.ClientID != name {
			t.Fatalf("%s after login: %d %s", name, status, body)
		}
	}
	// Two-second tokens, refreshed a second before they expire: wait for
	// three rotations of each, while requests keep being answered.
	refreshes := func(client string) []oidctest.TokenRequest {
		var out []oidctest.TokenRequest
		for _, r := range idp.Records().TokenRequests {
			if r.Params.Get("client_id") == client && r.GrantType == "refresh_token" {
				out = append(out, r)
			}
		}
		return out
	}
	waitFor(t, "three refreshes of each upstream", func() bool {
		for _, name := range []string{"user", "public"} {
			if status, _, body := p.getAPI("/" + name + "/me"); status != 200 {
				t.Fatalf("%s during rotations: %d %s", name, status, body)
			}
		}
		return len(refreshes("user")) >= 3 && len(refreshes("public")) >= 3
	})
	p.stop()
	for _, name := range []string{"user", "public"} {
		method := map[string]string{"user": "private_key_jwt", "public": "none"}[name]
		redeemed := map[string]bool{}
		for i, r := range refreshes(name) {
			if r.Status != 200 || r.AuthMethod != method {
				t.Errorf("%s refresh %d: status %d %s, authenticated by %q", name, i, r.Status, r.Error, r.AuthMethod)
			}
			if rt := r.Params.Get("refresh_token"); redeemed[rt] {
				t.Errorf("%s refresh %d redeemed a refresh token twice", name, i)
			} else {
				redeemed[rt] = true
			}
		}
		for _, r := range idp.Records().TokenRequests {
			if r.GrantType != "authorization_code" || r.Params.Get("client_id") != name {
				continue
			}
			sum := sha256.Sum256([]byte(r.Params.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != challenges[name] || r.Status != 200 || r.AuthMethod != method {
				t.Errorf("%s: the code exchange (status %d, method %q) did not carry the verifier of the challenge", name, r.Status, r.AuthMethod)
			}
			if name == "user" && r.ClientAssertion == nil {
				t.Errorf("the login's code exchange sent no client assertion")
			}
		}
	}
}
