package auth

// The client authentication and the grants, wired through NewSource and
// Login, against a recording endpoint of our own; realserver_test.go
// puts the same wiring in front of oidc-provider.

import (
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/testpki"
	"github.com/authproxy/authproxy/pki"
)

// seenRequest is one token request as the recording endpoint saw it.
type seenRequest struct {
	form   url.Values
	json   map[string]any // the body, when it was JSON
	header http.Header
}

// recordingEndpoint records every token request; answer, if set, says
// what to answer the nth (from 0), else a token.
type recordingEndpoint struct {
	URL    string
	mu     sync.Mutex
	seen   []seenRequest
	answer func(n int, form url.Values) (int, string)
}

func newRecordingEndpoint(t *testing.T) *recordingEndpoint {
	e := &recordingEndpoint{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := seenRequest{header: r.Header.Clone()}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			json.Unmarshal(body, &req.json)
		} else {
			req.form, _ = url.ParseQuery(string(body))
		}
		e.mu.Lock()
		n := len(e.seen)
		e.seen = append(e.seen, req)
		answer := e.answer
		e.mu.Unlock()
		status, out := 200, fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"}`, n, n)
		if answer != nil {
			status, out = answer(n, req.form)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	e.URL = srv.URL + "/token"
	return e
}

func (e *recordingEndpoint) requests() []seenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]seenRequest(nil), e.seen...)
}

func newTestSource(t *testing.T, s Settings, o Options) *Cache {
	t.Helper()
	if s.Name == "" {
		s.Name = "api"
	}
	c, err := NewSource(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeKeyFile(t *testing.T, pemBytes ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	writeFile(t, path, []byte(strings.Join(func() []string {
		var s []string
		for _, b := range pemBytes {
			s = append(s, string(b))
		}
		return s
	}(), "")))
	return path
}

// Each method puts into the request what RFC 6749, 7523 and 8705 say,
// and nothing of the others.
func TestClientAuthMethodsThroughNewSource(t *testing.T) {
	ep := newRecordingEndpoint(t)
	key := testKeys()["p256"]
	keyFile := writeKeyFile(t, pkcs8(t, key))
	secret := strings.Repeat("k", 32)
	assertionFile := filepath.Join(t.TempDir(), "token")
	platform, _ := NewSignedAssertion(AssertionConfig{ClientID: "id", TokenURL: ep.URL, Key: key})
	written, _ := platform.Assertion()
	writeFile(t, assertionFile, []byte(written+"\n"))
	for _, tc := range []struct {
		name     string
		settings Settings
		check    func(t *testing.T, r seenRequest)
	}{
		{"client_secret_post", Settings{Client: Client{ClientSecret: secret}}, func(t *testing.T, r seenRequest) {
			if r.form.Get("client_secret") != secret || r.header.Get("Authorization") != "" || r.form.Has("client_assertion") {
				t.Errorf("form %v", r.form)
			}
		}},
		{"client_secret_basic", Settings{Client: Client{ClientSecret: secret, AuthMethod: ClientSecretBasic}}, func(t *testing.T, r seenRequest) {
			req := &http.Request{Header: r.header}
			if u, p, ok := req.BasicAuth(); !ok || u != "id" || p != secret || r.form.Has("client_secret") {
				t.Errorf("basic %q %q %v, form %v", u, p, ok, r.form)
			}
		}},
		{"client_secret_jwt", Settings{Client: Client{ClientSecret: secret, AuthMethod: ClientSecretJWT}, KeyID: "k1"}, func(t *testing.T, r seenRequest) {
			h, c := verifyAssertion(t, r.form.Get("client_assertion"), HS256, []byte(secret))
			if r.form.Has("client_secret") || h.KeyID != "k1" || c["iss"] != "id" || c["sub"] != "id" || c["aud"] != ep.URL {
				t.Errorf("form %v, header %+v, claims %v", r.form, h, c)
			}
		}},
		{"private_key_jwt", Settings{Client: Client{AuthMethod: PrivateKeyJWT}, PrivateKeyFile: keyFile, AssertionAudience: "https://issuer/"},
			func(t *testing.T, r seenRequest) {
				_, c := verifyAssertion(t, r.form.Get("client_assertion"), ES256, key.Public())
				if c["aud"] != "https://issuer/" || c["jti"] == "" || c["exp"].(float64)-c["iat"].(float64) != 60 {
					t.Errorf("claims %v", c)
				}
			}},
		{"private_key_jwt from a file", Settings{Client: Client{AuthMethod: PrivateKeyJWT}, ClientAssertionFile: assertionFile},
			func(t *testing.T, r seenRequest) {
				if r.form.Get("client_assertion") != written {
					t.Errorf("sent %q, want the file's", r.form.Get("client_assertion"))
				}
			}},
		{"none", Settings{Client: Client{AuthMethod: AuthNone}}, func(t *testing.T, r seenRequest) {
			if len(r.form) != 2 || r.form.Get("client_id") != "id" || r.header.Get("Authorization") != "" {
				t.Errorf("form %v", r.form)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.settings
			s.Client.TokenURL, s.Client.ClientID = ep.URL, "id"
			before := len(ep.requests())
			if _, err := newTestSource(t, s, Options{}).Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := ep.requests()[before]
			if r.form.Get("client_id") != "id" || r.form.Get("grant_type") != "client_credentials" {
				t.Errorf("form %v", r.form)
			}
			if a := r.form.Get("client_assertion"); (a != "") != (r.form.Get("client_assertion_type") == ClientAssertionType) {
				t.Errorf("client_assertion_type %q with an assertion %v", r.form.Get("client_assertion_type"), a != "")
			}
			tc.check(t, r)
		})
	}
}

// A key file that holds the key's certificate, as Entra ID's
// certificate credentials are kept, names it in x5t and x5t#S256.
func TestPrivateKeyFileWithCertificateSendsThumbprints(t *testing.T) {
	ca := testpki.NewCA(t, "entra test")
	pair := ca.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: "app"}})
	path := writeKeyFile(t, pair.CertPEM, pair.KeyPEM)
	key, cert, err := pki.ReadKeyFile(path)
	if err != nil || cert == nil || !cert.Equal(pair.Leaf) {
		t.Fatalf("pki.ReadKeyFile: %v, certificate %v", err, cert != nil)
	}
	ep := newRecordingEndpoint(t)
	src := newTestSource(t, Settings{Client: Client{TokenURL: ep.URL, ClientID: "id", AuthMethod: PrivateKeyJWT}, PrivateKeyFile: path}, Options{})
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, _ := verifyAssertion(t, ep.requests()[0].form.Get("client_assertion"), ES256, key.Public())
	if h.ExtraHeaders["x5t#S256"] == nil || h.ExtraHeaders["x5t"] == nil {
		t.Errorf("headers %+v", h.ExtraHeaders)
	}
	other := ca.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: "other"}})
	if _, _, err := pki.ReadKeyFile(writeKeyFile(t, other.CertPEM, pair.KeyPEM)); !errors.Is(err, pki.ErrKey) || !strings.Contains(err.Error(), "is not the key's") {
		t.Errorf("a certificate of another key: %v", err)
	}
}

// Every attempt is built anew: the retry after a failure carries a new
// jti, and the files the platform rotates are read again.
func TestEveryAttemptMintsAndReadsAnew(t *testing.T) {
	ep := newRecordingEndpoint(t)
	ep.answer = func(n int, _ url.Values) (int, string) {
		if n == 0 {
			return 503, `{"error":"temporarily_unavailable"}`
		}
		return 200, fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n)
	}
	dir := t.TempDir()
	subject, actor := filepath.Join(dir, "subject"), filepath.Join(dir, "actor")
	writeFile(t, subject, []byte("subject-1\n"))
	writeFile(t, actor, []byte("actor-1"))
	clk := fakeclock.New(time.Now())
	src := newTestSource(t, Settings{Grant: GrantTokenExchange,
		Client:         Client{TokenURL: ep.URL, ClientID: "id", AuthMethod: PrivateKeyJWT},
		PrivateKeyFile: writeKeyFile(t, pkcs8(t, testKeys()["ed25519"])), SubjectTokenFile: subject, ActorTokenFile: actor,
	}, Options{Now: clk.Now})
	ctx := context.Background()
	if _, err := src.Token(ctx); err == nil {
		t.Fatal("the 503 was not an error")
	}
	writeFile(t, subject, []byte("subject-2"))
	clk.Advance(2 * time.Second) // past the backoff
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(tok)
	writeFile(t, actor, []byte("actor-2"))
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := ep.requests()
	jtis := map[string]bool{}
	for i, want := range [][2]string{{"subject-1", "actor-1"}, {"subject-2", "actor-1"}, {"subject-2", "actor-2"}} {
		f := reqs[i].form
		if f.Get("subject_token") != want[0] || f.Get("actor_token") != want[1] {
			t.Errorf("request %d sent subject %q actor %q, want %q", i, f.Get("subject_token"), f.Get("actor_token"), want)
		}
		_, c := verifyAssertion(t, f.Get("client_assertion"), EdDSA, testKeys()["ed25519"].Public())
		jtis[c["jti"].(string)] = true
	}
	if len(jtis) != 3 {
		t.Errorf("%d distinct jtis in 3 requests", len(jtis))
	}
}

// An endpoint that echoes the request in its error learns nothing it can
// pass on: the assertions, subject and actor tokens and password are
// scrubbed from the error in every form the request used.
func TestEchoedCredentialsAreRedacted(t *testing.T) {
	ep := newRecordingEndpoint(t)
	ep.answer = func(_ int, form url.Values) (int, string) {
		b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": "got " + form.Encode() + " " + fmt.Sprint(form)})
		return 400, string(b)
	}
	dir := t.TempDir()
	subject, actor := filepath.Join(dir, "s"), filepath.Join(dir, "a")
	writeFile(t, subject, []byte("subject-token-value"))
	writeFile(t, actor, []byte("actor-token-value"))
	for name, s := range map[string]Settings{
		"client_secret_jwt + password": {Grant: GrantPassword, Username: "alice", Password: "password-value",
			Client: Client{AuthMethod: ClientSecretJWT, ClientSecret: strings.Repeat("q", 32)}},
		"private_key_jwt + token exchange": {Grant: GrantTokenExchange, SubjectTokenFile: subject, ActorTokenFile: actor,
			Client: Client{AuthMethod: PrivateKeyJWT}, PrivateKeyFile: writeKeyFile(t, pkcs8(t, testKeys()["p384"]))},
		"jwt-bearer signed": {Grant: GrantJWTBearer, PrivateKeyFile: writeKeyFile(t, pkcs8(t, testKeys()["p256"]))},
	} {
		s.Client.TokenURL, s.Client.ClientID = ep.URL, "id"
		before := len(ep.requests())
		_, err := newTestSource(t, s, Options{}).Token(context.Background())
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		for k, vs := range ep.requests()[before].form {
			if !secretFields[k] {
				continue
			}
			for _, v := range vs {
				for _, form := range []string{v, url.QueryEscape(v), v[:len(v)*3/4]} {
					if len(form) >= 8 && strings.Contains(err.Error(), form) {
						t.Errorf("%s: the error holds %s (%.8s...): %v", name, k, form, err)
					}
				}
			}
		}
		if !strings.Contains(err.Error(), redacted) {
			t.Errorf("%s: nothing was redacted: %v", name, err)
		}
	}
}

// login's code exchange authenticates as the refreshes do.
func TestLoginUsesTheClientAuthentication(t *testing.T) {
	ep := newRecordingEndpoint(t)
	key := testKeys()["p256"]
	s := Settings{Name: "user", Grant: GrantRefreshToken, Client: Client{TokenURL: ep.URL, ClientID: "id", AuthMethod: PrivateKeyJWT},
		PrivateKeyFile: writeKeyFile(t, pkcs8(t, key)), KeyID: "k"}
	store := &memStore{}
	if err := Login(context.Background(), s, Options{Store: store}, "the-code", "the-verifier", "http://127.0.0.1:1/cb"); err != nil {
		t.Fatal(err)
	}
	src := newTestSource(t, s, Options{Store: store})
	tok, _ := src.Token(context.Background())
	src.Invalidate(tok)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := ep.requests()
	if len(reqs) != 2 || reqs[0].form.Get("grant_type") != "authorization_code" || reqs[1].form.Get("grant_type") != "refresh_token" {
		t.Fatalf("requests %v", reqs)
	}
	for _, r := range reqs {
		if h, _ := verifyAssertion(t, r.form.Get("client_assertion"), ES256, key.Public()); h.KeyID != "k" {
			t.Errorf("%s: kid %q", r.form.Get("grant_type"), h.KeyID)
		}
	}
}

// What a token depends on: the key's content (a reload after the key was
// replaced builds a new source), the subject of token exchange and the
// user of the password grant (their tokens are not the client's own).
func TestIdentityOfTheNewSettings(t *testing.T) {
	key := writeKeyFile(t, pkcs8(t, testKeys()["p256"]))
	base := Settings{Name: "api", Client: Client{TokenURL: "https://a/token", ClientID: "id", AuthMethod: PrivateKeyJWT}, PrivateKeyFile: key}
	id := base.Identity()
	if strings.Contains(fmt.Sprint(id), key) {
		t.Error("the identity names the key file")
	}
	writeFile(t, key, pkcs8(t, testKeys()["p384"]))
	if got := base.Identity(); got.Settings == id.Settings || got.Client != id.Client {
		t.Errorf("a replaced key: settings changed %v, client kept %v", got.Settings != id.Settings, got.Client == id.Client)
	}
	for name, pair := range map[string][2]Settings{
		"subject": {{Grant: GrantTokenExchange, SubjectTokenFile: "/a"}, {Grant: GrantTokenExchange, SubjectTokenFile: "/b"}},
		"user":    {{Grant: GrantPassword, Username: "alice"}, {Grant: GrantPassword, Username: "bob"}},
		"grant":   {{}, {Grant: GrantJWTBearer, AssertionFile: "/a"}},
	} {
		if pair[0].Identity().Client == pair[1].Identity().Client {
			t.Errorf("%s: two subjects share a client identity", name)
		}
	}
	plain := Settings{Client: Client{TokenURL: "https://a/token", ClientID: "id"}}
	if got := plain.Identity().Client; got != plain.Client.Fingerprint() {
		t.Error("a client-credentials source's identity is no longer its client's fingerprint")
	}
}

// Settings with none of the client-authentication settings keep the
// identity they had before those existed (pinned from main at 8d4c1c9):
// stored records and shared tokens survive the upgrade, and the first
// reload after it keeps every cache.
func TestIdentityOfOlderSettingsUnchanged(t *testing.T) {
	s := Settings{Name: "api", Grant: GrantRefreshToken, Target: "https://api", RefreshToken: "r", RefreshBefore: time.Minute,
		Client: Client{TokenURL: "https://a/token", ClientID: "id", ClientSecret: "s1", AuthMethod: ClientSecretBasic,
			Scopes: []string{"read", "write"}, Params: map[string]string{"audience": "x"}}}
	want := Identity{Client: "a425fa6d8afe23ba", Settings: "622e870bc1b4b373abb11d493f6547fc128ba80d69959387056b381cfd6000a7"}
	if got := s.Identity(); got != want {
		t.Errorf("identity %+v, want %+v", got, want)
	}
}
