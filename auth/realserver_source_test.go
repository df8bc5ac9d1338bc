package auth

// The wired sources (NewSource, Login) in front of oidc-provider: what the
// proxy sends, through the code paths the proxy uses, satisfies a server
// we did not write. The sources reach it over HTTPS, trusting its private
// CA through TLS.CAFile as a config's tls.ca_file would.

import (
	"context"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/oidctest"
	"github.com/authproxy/authproxy/pki"
)

const realRedirect = "http://127.0.0.1:1/callback"

// realSettings reach srv as client id, trusting its CA.
func realSettings(t *testing.T, srv *oidctest.Server, id string) Settings {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	writeFile(t, ca, srv.CA.PEM)
	return Settings{Name: id, Client: Client{TokenURL: srv.TokenURL, ClientID: id}, TLS: pki.TLSFiles{CAFile: ca}}
}

func jwk(key any, kid string) []jose.JSONWebKey {
	return []jose.JSONWebKey{{Key: key, KeyID: kid, Use: "sig"}}
}

// Point 1: private_key_jwt with an RSA, an EC and an Ed25519 key; the
// provider's replay check sees a fresh jti on every request, the retry
// after a 5xx included.
func TestRealServerPrivateKeyJWTFreshJTIEveryRequestAndRetry(t *testing.T) {
	keys := map[string]string{"rsa": "RS256", "p256": "ES256", "ed25519": "EdDSA"}
	var clients []oidctest.Client
	for name := range keys {
		clients = append(clients, oidctest.Client{ID: name, AuthMethod: "private_key_jwt", Keys: jwk(testKeys()[name].Public(), name)})
	}
	srv := oidctest.Start(t, oidctest.Options{Clients: clients})
	ctx := context.Background()
	for name, alg := range keys {
		t.Run(name, func(t *testing.T) {
			srv.Reset()
			s := realSettings(t, srv, name)
			s.Client.AuthMethod, s.PrivateKeyFile, s.KeyID = PrivateKeyJWT, writeKeyFile(t, pkcs8(t, testKeys()[name])), name
			// The cache's clock, near the provider's, so that the
			// assertions it dates are current; advanced past the backoff.
			clk := fakeclock.New(time.Now())
			src := newTestSource(t, s, Options{Now: clk.Now})
			tok, err := src.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			src.Invalidate(tok) // a 401 upstream: a second request
			srv.FailNext(http.StatusServiceUnavailable, 1)
			if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), "503") {
				t.Fatalf("the injected 503: %v", err)
			}
			clk.Advance(2 * time.Second)
			if _, err := src.Token(ctx); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			recs := srv.Records()
			statuses, jtis := []int{}, map[string]bool{}
			for _, r := range recs.TokenRequests {
				statuses = append(statuses, r.Status)
				if r.ClientAssertion.Header["alg"] != alg || r.AuthMethod != "private_key_jwt" && r.Status == 200 {
					t.Errorf("alg %v, method %q", r.ClientAssertion.Header["alg"], r.AuthMethod)
				}
				jtis[fmt.Sprint(r.ClientAssertion.Claims["jti"])] = true
			}
			if fmt.Sprint(statuses) != "[200 503 200]" || len(jtis) != 3 {
				t.Errorf("statuses %v, %d distinct jtis", statuses, len(jtis))
			}
			// The provider's replay check ran on both accepted requests
			// (the 503 was answered before it) and accepted both.
			if n := len(recs.AssertionJTIs); n != 2 || recs.AssertionJTIs[0].JTI == recs.AssertionJTIs[1].JTI {
				t.Errorf("verified jtis %+v", recs.AssertionJTIs)
			}
		})
	}
}

// Point 2: client_secret_jwt, HS256 by default, and HS512 when asked.
func TestRealServerClientSecretJWT(t *testing.T) {
	secret := strings.Repeat("0123456789abcdef", 4)
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "hs256", Secret: secret, AuthMethod: "client_secret_jwt", SigningAlg: "HS256"},
		{ID: "hs512", Secret: secret, AuthMethod: "client_secret_jwt", SigningAlg: "HS512"},
	}})
	for _, id := range []string{"hs256", "hs512"} {
		s := realSettings(t, srv, id)
		s.Client.AuthMethod, s.Client.ClientSecret = ClientSecretJWT, secret
		if id == "hs512" {
			s.SigningAlg = HS512
		}
		if _, err := newTestSource(t, s, Options{}).Token(context.Background()); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	for i, r := range srv.Records().TokenRequests {
		if r.Status != 200 || r.AuthMethod != "client_secret_jwt" || r.Params.Has("client_secret") ||
			r.ClientAssertion.Header["alg"] != strings.ToUpper([]string{"hs256", "hs512"}[i]) {
			t.Errorf("request %d: %+v", i, r)
		}
	}
}

// Point 4: the client assertion file is read again after it changes.
func TestRealServerClientAssertionFileReread(t *testing.T) {
	key := testKeys()["p256"]
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "workload", AuthMethod: "private_key_jwt", Keys: jwk(key.Public(), "platform")},
	}})
	platform, _ := NewSignedAssertion(AssertionConfig{ClientID: "workload", TokenURL: srv.TokenURL, Key: key, KeyID: "platform"})
	s := realSettings(t, srv, "workload")
	s.Client.AuthMethod, s.ClientAssertionFile = PrivateKeyJWT, filepath.Join(t.TempDir(), "token")
	src := newTestSource(t, s, Options{})
	var written []string
	for i := range 3 {
		a, _ := platform.Assertion()
		writeFile(t, s.ClientAssertionFile, []byte(a+"\n"))
		written = append(written, a)
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("after rotation %d: %v", i, err)
		}
		src.Invalidate(tok)
	}
	for i, r := range srv.Records().TokenRequests {
		if r.Status != 200 || r.Params.Get("client_assertion") != written[i] {
			t.Errorf("request %d: status %d, sent the file's assertion %v", i, r.Status, r.Params.Get("client_assertion") == written[i])
		}
	}
}

// Point 6: the jwt-bearer and token-exchange grants, registered on the
// provider, get exactly the parameters RFC 7523 2.1 and RFC 8693 2.1 ask,
// the subject token read again for each request.
func TestRealServerJWTBearerAndTokenExchangeParameters(t *testing.T) {
	key := testKeys()["rsa"]
	srv := oidctest.Start(t, oidctest.Options{Scopes: []string{"api.read"}, Clients: []oidctest.Client{
		{ID: "wl", AuthMethod: "private_key_jwt", Keys: jwk(key.Public(), "wl"),
			GrantTypes: []string{oidctest.GrantJWTBearer, oidctest.GrantTokenExchange}},
	}})
	dir := t.TempDir()
	subject, actor := filepath.Join(dir, "subject"), filepath.Join(dir, "actor")
	writeFile(t, actor, []byte("actor-token\n"))
	base := realSettings(t, srv, "wl")
	base.Client.AuthMethod, base.Client.Scopes = PrivateKeyJWT, []string{"api.read"}
	base.PrivateKeyFile, base.KeyID = writeKeyFile(t, pkcs8(t, key)), "wl"

	jb := base
	jb.Grant = GrantJWTBearer // the grant's assertion signed with the same key
	if _, err := newTestSource(t, jb, Options{}).Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	te := base
	te.Name, te.Grant, te.SubjectTokenFile, te.ActorTokenFile = "te", GrantTokenExchange, subject, actor
	te.RequestedTokenType = "urn:ietf:params:oauth:token-type:access_token"
	te.Client.Audience, te.Client.Resource = []string{"https://api.example", "https://other.example"}, []string{"https://api.example/v1"}
	src := newTestSource(t, te, Options{})
	for i := range 2 {
		writeFile(t, subject, []byte(fmt.Sprintf("subject-token-%d", i)))
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		src.Invalidate(tok)
	}

	grants := srv.Records().Grants
	if len(grants) != 3 {
		t.Fatalf("grant requests: %+v", grants)
	}
	a, _ := jose.ParseSigned(grants[0].Params.Get("assertion"), []jose.SignatureAlgorithm{jose.RS256})
	payload, err := a.Verify(key.Public())
	if err != nil || !strings.Contains(string(payload), `"iss":"wl"`) || !strings.Contains(string(payload), `"aud":"`+srv.TokenURL+`"`) {
		t.Errorf("jwt-bearer assertion: %v %s", err, payload)
	}
	want := func(g oidctest.GrantRequest, fields map[string][]string) {
		t.Helper()
		for k, v := range fields {
			if fmt.Sprint(g.Params[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", g.GrantType, k, g.Params[k], v)
			}
		}
		if g.AuthMethod != "private_key_jwt" || g.Params.Get("client_assertion_type") != ClientAssertionType {
			t.Errorf("%s: client authenticated by %q", g.GrantType, g.AuthMethod)
		}
	}
	want(grants[0], map[string][]string{"grant_type": {string(GrantJWTBearer)}, "scope": {"api.read"}, "subject_token": nil})
	for i, g := range grants[1:] {
		want(g, map[string][]string{"grant_type": {string(GrantTokenExchange)}, "subject_token": {fmt.Sprintf("subject-token-%d", i)},
			"subject_token_type": {TokenTypeJWT}, "actor_token": {"actor-token"}, "actor_token_type": {TokenTypeJWT},
			"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "scope": {"api.read"},
			"audience": {"https://api.example", "https://other.example"}, "resource": {"https://api.example/v1"}, "assertion": nil})
	}
}

// Every client authentication method with every grant that takes one:
// client credentials, password, jwt-bearer, token exchange, and the
// authorization code (Login) followed by refresh-token rotations.
func TestRealServerEveryClientAuthWithEveryGrant(t *testing.T) {
	secret := strings.Repeat("s3cr3t-", 6)
	key := testKeys()["ed25519"]
	platformKey := testKeys()["p384"]
	grants := []string{"client_credentials", oidctest.GrantPassword, oidctest.GrantJWTBearer, oidctest.GrantTokenExchange, "authorization_code", "refresh_token"}
	subject := pkix.Name{CommonName: "matrix", Organization: []string{"authproxy tests"}}
	methods := []struct {
		name   string
		client oidctest.Client
		set    func(*Settings)
	}{
		{"client_secret_post", oidctest.Client{Secret: secret}, func(s *Settings) { s.Client.ClientSecret = secret }},
		{"client_secret_basic", oidctest.Client{Secret: secret}, func(s *Settings) { s.Client.ClientSecret = secret }},
		{"client_secret_jwt", oidctest.Client{Secret: secret}, func(s *Settings) { s.Client.ClientSecret = secret }},
		{"private_key_jwt", oidctest.Client{Keys: jwk(key.Public(), "k")}, func(s *Settings) { s.PrivateKeyFile = writeKeyFile(t, pkcs8(t, key)) }},
		{"tls_client_auth", oidctest.Client{SubjectDN: "CN=matrix,O=authproxy tests"}, nil},
		{"none", oidctest.Client{}, nil},
	}
	var clients []oidctest.Client
	for _, m := range methods {
		c := m.client
		c.ID, c.AuthMethod, c.GrantTypes, c.RedirectURIs = m.name, m.name, grants, []string{realRedirect}
		if m.name == "none" {
			// A public client has no credentials to get tokens of its own.
			c.GrantTypes = []string{"authorization_code", "refresh_token"}
		}
		clients = append(clients, c)
	}
	srv := oidctest.Start(t, oidctest.Options{Clients: clients, Users: map[string]string{"alice": "alice-password"}})
	pair := srv.ClientCert(subject)
	dir := t.TempDir()
	certFile, keyFile, subjectFile, grantFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "sa"), filepath.Join(dir, "grant")
	writeFile(t, certFile, pair.CertPEM)
	writeFile(t, keyFile, pair.KeyPEM)
	writeFile(t, subjectFile, []byte("platform-subject-token"))
	grantAssertion, _ := NewSignedAssertion(AssertionConfig{ClientID: "platform", Audience: srv.TokenURL, Key: platformKey})
	ga, _ := grantAssertion.Assertion()
	writeFile(t, grantFile, []byte(ga))

	ctx := context.Background()
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			settings := func(grant GrantType) Settings {
				s := realSettings(t, srv, m.name)
				s.Grant, s.Client.AuthMethod = grant, AuthMethod(m.name)
				s.TLS.CertFile, s.TLS.KeyFile = certFile, keyFile // presented to all; tls_client_auth's credential
				if m.set != nil {
					m.set(&s)
				}
				return s
			}
			if m.name != "none" {
				for _, s := range []Settings{settings(GrantClientCredentials), func() Settings {
					s := settings(GrantPassword)
					s.Username, s.Password = "alice", "alice-password"
					return s
				}(), func() Settings {
					s := settings(GrantJWTBearer)
					s.AssertionFile = grantFile
					return s
				}(), func() Settings {
					s := settings(GrantTokenExchange)
					s.SubjectTokenFile = subjectFile
					return s
				}()} {
					if _, err := newTestSource(t, s, Options{}).Token(ctx); err != nil {
						t.Errorf("%s: %v", s.Grant, err)
					}
				}
			}
			refreshRotations(t, srv, settings(GrantRefreshToken))
		})
	}
	seen := map[string]int{}
	for _, r := range srv.Records().TokenRequests {
		if r.Status != 200 {
			t.Errorf("%s with %s: status %d %s", r.GrantType, r.Params.Get("client_id"), r.Status, r.Error)
			continue
		}
		if r.AuthMethod != r.ClientID {
			t.Errorf("%s: the provider authenticated %s by %s", r.GrantType, r.ClientID, r.AuthMethod)
		}
		seen[r.ClientID+" "+r.GrantType]++
	}
	for _, m := range methods {
		for _, g := range grants {
			if n := seen[m.name+" "+g]; n == 0 && (m.name != "none" || g == "authorization_code" || g == "refresh_token") {
				t.Errorf("no successful %s request by %s", g, m.name)
			}
		}
	}
}

// refreshRotations logs in with s (the authorization code with PKCE),
// then refreshes twice through the source, each rotating the refresh
// token, which the source keeps.
func refreshRotations(t *testing.T, srv *oidctest.Server, s Settings) {
	t.Helper()
	verifier := strings.Repeat("v", 20) + s.Name + strings.Repeat("v", 30)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {s.Client.ClientID}, "redirect_uri": {realRedirect},
		"scope": {"openid offline_access"}, "prompt": {"consent"}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	back := srv.Authorize(srv.AuthorizeURL+"?"+q.Encode(), realRedirect)
	store := &memStore{}
	ctx := context.Background()
	if err := Login(ctx, s, Options{Store: store}, back.Get("code"), verifier, realRedirect); err != nil {
		t.Fatalf("login: %v", err)
	}
	src := newTestSource(t, s, Options{Store: store})
	seen := map[string]bool{}
	for i := range 3 {
		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		rec, _ := store.Load(ctx, s.Name)
		seen[rec.RefreshToken] = true
		src.Invalidate(tok)
	}
	if len(seen) != 3 {
		t.Errorf("%d refresh tokens over a login and two refreshes, want 3", len(seen))
	}
}
