package oidctest_test

// These tests prove the harness: they talk to the provider with plain
// net/http and go-jose, no authproxy code, so that a later authproxy test
// that fails against it fails for authproxy's reasons.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authproxy/authproxy/internal/oidctest"
	"github.com/authproxy/authproxy/internal/testpki"
)

const secret = "a-client-secret-of-at-least-32-bytes!!"

type tokenAnswer struct {
	Status           int
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	IssuedTokenType  string `json:"issued_token_type"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func postToken(t *testing.T, c *http.Client, tokenURL string, form url.Values, basicUser, basicPass string) tokenAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("token answer (status %d): %v", resp.StatusCode, err)
	}
	a.Status = resp.StatusCode
	return a
}

// assertion signs an RFC 7523 client assertion, as a client would.
func assertion(t *testing.T, alg jose.SignatureAlgorithm, key any, kid, clientID, aud, jti string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud}, ID: jti,
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomID(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func assertionForm(a string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {a},
	}
}

type signingKey struct {
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newKeys(t *testing.T) map[string]signingKey {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]signingKey{
		"rsa": {jose.RS256, rsaKey}, "ec": {jose.ES256, ecKey}, "ed25519": {jose.EdDSA, edKey},
	}
}

func publicJWK(k signingKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"}
}

func TestClientCredentialsWithEachClientAuthMethod(t *testing.T) {
	keys := newKeys(t)
	clients := []oidctest.Client{
		{ID: "post", Secret: secret, AuthMethod: "client_secret_post"},
		{ID: "basic", Secret: secret, AuthMethod: "client_secret_basic"},
		{ID: "hs256", Secret: secret, AuthMethod: "client_secret_jwt", SigningAlg: "HS256"},
	}
	for name, k := range keys {
		clients = append(clients, oidctest.Client{ID: "pkjwt-" + name, AuthMethod: "private_key_jwt", Keys: []jose.JSONWebKey{publicJWK(k, name)}})
	}
	srv := oidctest.Start(t, oidctest.Options{Clients: clients})
	c := srv.HTTPClient()
	cc := url.Values{"grant_type": {"client_credentials"}}

	t.Run("client_secret_post", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"post"}, "client_secret": {secret}}
		if a := postToken(t, c, srv.TokenURL, form, "", ""); a.Status != 200 || a.AccessToken == "" {
			t.Fatalf("answer %+v", a)
		}
		if a := postToken(t, c, srv.TokenURL, form, "post", secret); a.Status != 400 || a.Error != "invalid_request" {
			t.Fatalf("the provider accepted a secret in the form and in the header at once: %+v", a)
		}
	})
	t.Run("client_secret_basic", func(t *testing.T) {
		if a := postToken(t, c, srv.TokenURL, cc, "basic", secret); a.Status != 200 || a.AccessToken == "" {
			t.Fatalf("answer %+v", a)
		}
		if a := postToken(t, c, srv.TokenURL, cc, "basic", "wrong-"+secret); a.Status != 401 {
			t.Fatalf("a wrong secret was accepted: %+v", a)
		}
	})
	t.Run("client_secret_jwt", func(t *testing.T) {
		a := postToken(t, c, srv.TokenURL, assertionForm(assertion(t, jose.HS256, []byte(secret), "", "hs256", srv.TokenURL, randomID(t))), "", "")
		if a.Status != 200 || a.AccessToken == "" {
			t.Fatalf("answer %+v", a)
		}
		a = postToken(t, c, srv.TokenURL, assertionForm(assertion(t, jose.HS256, []byte("another-secret-that-is-32-bytes-long"), "", "hs256", srv.TokenURL, randomID(t))), "", "")
		if a.Status != 401 {
			t.Fatalf("an assertion signed with another secret was accepted: %+v", a)
		}
	})
	for name, k := range keys {
		t.Run("private_key_jwt/"+name, func(t *testing.T) {
			id := "pkjwt-" + name
			a := postToken(t, c, srv.TokenURL, assertionForm(assertion(t, k.alg, k.priv, name, id, srv.TokenURL, randomID(t))), "", "")
			if a.Status != 200 || a.AccessToken == "" {
				t.Fatalf("answer %+v", a)
			}
			other := newKeys(t)[name]
			a = postToken(t, c, srv.TokenURL, assertionForm(assertion(t, other.alg, other.priv, name, id, srv.TokenURL, randomID(t))), "", "")
			if a.Status != 401 || a.Error != "invalid_client" {
				t.Fatalf("an assertion signed with an unregistered key was accepted: %+v", a)
			}
		})
	}

	recs := srv.Records()
	methods := map[string]bool{}
	for _, r := range recs.TokenRequests {
		if r.Status != 200 {
			continue
		}
		methods[r.AuthMethod] = true
		// The provider takes a secret from either place for both secret
		// methods; the record says which one the client used.
		inForm, inHeader := r.Params.Has("client_secret"), r.Authorization == "Basic"
		if (r.ClientID == "post") != inForm || (r.ClientID == "basic") != inHeader {
			t.Errorf("%s: secret in form %v, in Basic header %v", r.ClientID, inForm, inHeader)
		}
	}
	for _, m := range []string{"client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt"} {
		if !methods[m] {
			t.Errorf("no successful token request recorded with %s; recorded %v", m, methods)
		}
	}
}

func TestReusedJTIIsRefused(t *testing.T) {
	k := newKeys(t)["ec"]
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "app", AuthMethod: "private_key_jwt", Keys: []jose.JSONWebKey{publicJWK(k, "k1")}},
	}})
	c := srv.HTTPClient()
	a := assertion(t, k.alg, k.priv, "k1", "app", srv.TokenURL, "jti-1")
	if got := postToken(t, c, srv.TokenURL, assertionForm(a), "", ""); got.Status != 200 {
		t.Fatalf("first use: %+v", got)
	}
	got := postToken(t, c, srv.TokenURL, assertionForm(a), "", "")
	if got.Status != 401 || got.Error != "invalid_client" {
		t.Fatalf("the same assertion was accepted twice: %+v", got)
	}
	// A new assertion with the same jti is refused too: the check is on
	// the jti, not on the token's bytes.
	again := assertion(t, k.alg, k.priv, "k1", "app", srv.TokenURL, "jti-1")
	if got := postToken(t, c, srv.TokenURL, assertionForm(again), "", ""); got.Status != 401 {
		t.Fatalf("a reused jti in a new assertion was accepted: %+v", got)
	}
	recs := srv.Records()
	if n := len(recs.AssertionJTIs); n != 3 || recs.AssertionJTIs[0].JTI != "jti-1" || recs.AssertionJTIs[2].JTI != "jti-1" {
		t.Fatalf("verified assertions recorded: %+v", recs.AssertionJTIs)
	}
}

func TestFailNextAnswersOnceAndRecordsTheRequest(t *testing.T) {
	k := newKeys(t)["ed25519"]
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "app", AuthMethod: "private_key_jwt", Keys: []jose.JSONWebKey{publicJWK(k, "k1")}},
	}})
	c := srv.HTTPClient()
	srv.FailNext(http.StatusServiceUnavailable, 1)
	first := assertion(t, k.alg, k.priv, "k1", "app", srv.TokenURL, "jti-a")
	if got := postToken(t, c, srv.TokenURL, assertionForm(first), "", ""); got.Status != 503 {
		t.Fatalf("FailNext: %+v", got)
	}
	retry := assertion(t, k.alg, k.priv, "k1", "app", srv.TokenURL, "jti-b")
	if got := postToken(t, c, srv.TokenURL, assertionForm(retry), "", ""); got.Status != 200 {
		t.Fatalf("retry after the injected 503: %+v", got)
	}
	recs := srv.Records()
	if len(recs.TokenRequests) != 2 {
		t.Fatalf("token requests: %+v", recs.TokenRequests)
	}
	jtis := []any{recs.TokenRequests[0].ClientAssertion.Claims["jti"], recs.TokenRequests[1].ClientAssertion.Claims["jti"]}
	if recs.TokenRequests[0].Status != 503 || jtis[0] != "jti-a" || jtis[1] != "jti-b" {
		t.Fatalf("recorded statuses and jtis: %d %v", recs.TokenRequests[0].Status, jtis)
	}
}

func TestTLSClientAuth(t *testing.T) {
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "mtls-dn", AuthMethod: "tls_client_auth", SubjectDN: "CN=app,O=authproxy tests"},
		{ID: "mtls-san", AuthMethod: "tls_client_auth", SANDNS: "app.internal"},
	}})
	good := srv.ClientCert(pkix.Name{CommonName: "app", Organization: []string{"authproxy tests"}}, "app.internal")
	other := srv.ClientCert(pkix.Name{CommonName: "someone-else", Organization: []string{"authproxy tests"}})
	form := func(id string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}
	}

	for _, id := range []string{"mtls-dn", "mtls-san"} {
		if a := postToken(t, srv.HTTPClientWithCert(&good.TLS), srv.TokenURL, form(id), "", ""); a.Status != 200 || a.AccessToken == "" {
			t.Fatalf("%s with the registered certificate: %+v", id, a)
		}
		if a := postToken(t, srv.HTTPClientWithCert(&other.TLS), srv.TokenURL, form(id), "", ""); a.Status != 401 {
			t.Fatalf("%s with another subject's certificate: %+v", id, a)
		}
		if a := postToken(t, srv.HTTPClient(), srv.TokenURL, form(id), "", ""); a.Status != 401 {
			t.Fatalf("%s without a certificate: %+v", id, a)
		}
	}
	// A certificate with the right subject from a CA the server does not
	// trust is refused: the provider checks that the peer was verified.
	stranger := srv.CA.Issue(t, leafFor("app"))
	if a := postToken(t, srv.HTTPClientWithCert(&stranger.TLS), srv.TokenURL, form("mtls-dn"), "", ""); a.Status != 401 {
		t.Fatalf("a certificate from an untrusted CA: %+v", a)
	}
	recs := srv.Records()
	if got := recs.TokenRequests[0].ClientCertSubject; !strings.Contains(got, "CN=app") {
		t.Fatalf("recorded client certificate subject %q", got)
	}
}

func TestCustomGrantsReceiveTheirParameters(t *testing.T) {
	srv := oidctest.Start(t, oidctest.Options{
		Scopes: []string{"api.read"},
		Clients: []oidctest.Client{{ID: "wl", Secret: secret, AuthMethod: "client_secret_post",
			GrantTypes: []string{oidctest.GrantJWTBearer, oidctest.GrantTokenExchange}}},
	})
	c := srv.HTTPClient()
	k := newKeys(t)["ec"]
	grantJWT := assertion(t, k.alg, k.priv, "", "workload", srv.TokenURL, randomID(t))

	a := postToken(t, c, srv.TokenURL, url.Values{
		"grant_type": {oidctest.GrantJWTBearer}, "assertion": {grantJWT}, "scope": {"api.read"},
		"client_id": {"wl"}, "client_secret": {secret},
	}, "", "")
	if a.Status != 200 || a.AccessToken == "" {
		t.Fatalf("jwt-bearer: %+v", a)
	}
	a = postToken(t, c, srv.TokenURL, url.Values{
		"grant_type": {oidctest.GrantTokenExchange}, "client_id": {"wl"}, "client_secret": {secret},
		"subject_token": {"the-subject-token"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"actor_token": {"the-actor-token"}, "actor_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"audience": {"https://api.example", "https://other.example"}, "resource": {"https://api.example/v1"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
	}, "", "")
	if a.Status != 200 || a.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("token exchange: %+v", a)
	}
	// RFC 8693 2.1: subject_token_type is required, and actor_token_type
	// with an actor_token.
	for _, missing := range []string{"subject_token_type", "actor_token_type"} {
		form := url.Values{
			"grant_type": {oidctest.GrantTokenExchange}, "client_id": {"wl"}, "client_secret": {secret},
			"subject_token": {"s"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
			"actor_token": {"a"}, "actor_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		}
		form.Del(missing)
		if a := postToken(t, c, srv.TokenURL, form, "", ""); a.Status != 400 || a.Error != "invalid_request" {
			t.Fatalf("token exchange without %s: %+v", missing, a)
		}
	}

	grants := srv.Records().Grants
	if len(grants) != 4 {
		t.Fatalf("grant requests recorded: %+v", grants)
	}
	jb, te := grants[0], grants[1]
	if jb.GrantType != oidctest.GrantJWTBearer || jb.Params.Get("assertion") != grantJWT || jb.Params.Get("scope") != "api.read" || jb.AuthMethod != "client_secret_post" {
		t.Fatalf("jwt-bearer recorded: %+v", jb)
	}
	if got := te.Params["audience"]; len(got) != 2 || te.Params.Get("subject_token") != "the-subject-token" ||
		te.Params.Get("actor_token") != "the-actor-token" || te.Params.Get("resource") != "https://api.example/v1" {
		t.Fatalf("token exchange recorded: %+v", te.Params)
	}
}

// clientAuth adds a client's authentication to a token request form and
// returns the Basic credentials to send, if any.
type clientAuth func(form url.Values) (user, pass string)

func TestAuthorizationCodeWithPKCEAndRefreshRotation(t *testing.T) {
	const redirect = "http://127.0.0.1:1/callback"
	k := newKeys(t)["ec"]
	codeClient := func(id, method string) oidctest.Client {
		return oidctest.Client{ID: id, AuthMethod: method,
			GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{redirect}}
	}
	basic, pkjwt, public := codeClient("basic", "client_secret_basic"), codeClient("pkjwt", "private_key_jwt"), codeClient("public", "none")
	basic.Secret = secret
	pkjwt.Keys = []jose.JSONWebKey{publicJWK(k, "k1")}
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{basic, pkjwt, public}})

	for id, auth := range map[string]clientAuth{
		"basic": func(url.Values) (string, string) { return "basic", secret },
		"pkjwt": func(f url.Values) (string, string) {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			f.Set("client_assertion", assertion(t, k.alg, k.priv, "k1", "pkjwt", srv.TokenURL, randomID(t)))
			return "", ""
		},
		"public": func(f url.Values) (string, string) { f.Set("client_id", "public"); return "", "" },
	} {
		t.Run(id, func(t *testing.T) { codeAndRotations(t, srv, id, redirect, auth) })
	}
	if n := len(srv.Records().Interactions); n == 0 {
		t.Fatal("no login or consent interaction recorded")
	}
}

func codeAndRotations(t *testing.T, srv *oidctest.Server, clientID, redirect string, auth clientAuth) {
	c := srv.HTTPClient()
	token := func(form url.Values) tokenAnswer {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		user, pass := auth(f)
		return postToken(t, c, srv.TokenURL, f, user, pass)
	}
	verifier := randomID(t) + randomID(t)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid offline_access"}, "state": {"st-1"}, "prompt": {"consent"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	back := srv.Authorize(srv.AuthorizeURL+"?"+q.Encode(), redirect)
	if back.Get("state") != "st-1" || back.Get("code") == "" {
		t.Fatalf("redirect back: %v", back)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "redirect_uri": {redirect}}

	exchange.Set("code_verifier", "not-the-verifier-"+verifier)
	if a := token(exchange); a.Status != 400 || a.Error != "invalid_grant" {
		t.Fatalf("a wrong code_verifier was accepted: %+v", a)
	}
	exchange.Set("code_verifier", verifier)
	a := token(exchange)
	if a.Status != 200 || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("code exchange: %+v", a)
	}

	refresh := a.RefreshToken
	for i := range 2 {
		b := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if b.Status != 200 || b.RefreshToken == "" || b.RefreshToken == refresh {
			t.Fatalf("refresh %d did not rotate: %+v", i+1, b)
		}
		old := refresh
		refresh = b.RefreshToken
		if i == 1 {
			// After the second rotation, the refresh token before it is
			// refused (invalid_grant).
			if o := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}}); o.Status != 400 || o.Error != "invalid_grant" {
				t.Fatalf("the rotated-out refresh token was accepted: %+v", o)
			}
		}
	}
	// A code is good once; its reuse is refused (and, per RFC 6749 4.1.2,
	// revokes the tokens issued for it, so this comes last).
	if again := token(exchange); again.Status != 400 || again.Error != "invalid_grant" {
		t.Fatalf("a code was exchanged twice: %+v", again)
	}
}

func leafFor(cn string) testpki.Leaf {
	return testpki.Leaf{Subject: pkix.Name{CommonName: cn, Organization: []string{"authproxy tests"}}}
}

// The zero Options is a server with no clients (its discovery answers).
func TestStartWithZeroOptions(t *testing.T) {
	srv := oidctest.Start(t, oidctest.Options{})
	if !strings.HasPrefix(srv.TokenURL, "https://127.0.0.1:") {
		t.Fatalf("token URL %s", srv.TokenURL)
	}
}

func TestPasswordGrantAndIntrospection(t *testing.T) {
	srv := oidctest.Start(t, oidctest.Options{
		Users: map[string]string{"alice": "wonderland"},
		Clients: []oidctest.Client{
			{ID: "legacy", Secret: secret, AuthMethod: "client_secret_post", GrantTypes: []string{oidctest.GrantPassword}},
			{ID: "api", Secret: secret, AuthMethod: "client_secret_basic"},
		},
	})
	c := srv.HTTPClient()
	form := url.Values{"grant_type": {"password"}, "client_id": {"legacy"}, "client_secret": {secret}, "username": {"alice"}, "password": {"wonderland"}}
	a := postToken(t, c, srv.TokenURL, form, "", "")
	if a.Status != 200 || a.AccessToken == "" {
		t.Fatalf("password grant: %+v", a)
	}
	form.Set("password", "looking-glass")
	if b := postToken(t, c, srv.TokenURL, form, "", ""); b.Status != 400 || b.Error != "invalid_grant" {
		t.Fatalf("a wrong password: %+v", b)
	}
	// The API's side: the token is active, and the client's.
	req, _ := http.NewRequest(http.MethodPost, srv.IntrospectionURL, strings.NewReader(url.Values{"token": {a.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api", secret)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	if !got.Active || got.ClientID != "legacy" {
		t.Fatalf("introspection: %d %+v", resp.StatusCode, got)
	}
	if g := srv.Records().Grants; len(g) != 2 || g[0].Params.Get("username") != "alice" {
		t.Fatalf("grants recorded: %+v", g)
	}
}
