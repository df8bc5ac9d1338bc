package auth

// These tests put the client-authentication building blocks in front of a
// real authorization server (oidc-provider, see internal/oidctest) before
// they are wired into the grants: what they mint and present must satisfy
// an implementation we did not write.

import (
	"crypto/x509/pkix"
	"encoding/json"
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
	"github.com/authproxy/authproxy/internal/testpki"
	"github.com/authproxy/authproxy/pki"
)

// postClientCredentials sends a client-credentials request with the
// assertion from src, as the wiring will, and returns the status.
func postClientCredentials(t *testing.T, c *http.Client, tokenURL string, form url.Values, src AssertionSource) int {
	t.Helper()
	if src != nil {
		a, err := src.Assertion()
		if err != nil {
			t.Fatal(err)
		}
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", a)
	}
	form.Set("grant_type", "client_credentials")
	resp, err := c.PostForm(tokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK && body.AccessToken == "" {
		t.Fatalf("200 without an access token")
	}
	return resp.StatusCode
}

func TestSignedAssertionsAgainstARealServer(t *testing.T) {
	k := testKeys()
	secret := strings.Repeat("x", 32)
	cases := map[string]AssertionConfig{
		"rsa": {Key: k["rsa"]}, "rsa-ps256": {Key: k["rsa"], Alg: PS256}, "p256": {Key: k["p256"]},
		"p384": {Key: k["p384"]}, "ed25519": {Key: k["ed25519"]}, "hs256": {Secret: secret},
	}
	var clients []oidctest.Client
	for name, cfg := range cases {
		c := oidctest.Client{ID: name, AuthMethod: "private_key_jwt"}
		if cfg.Secret != "" {
			c.AuthMethod, c.Secret = "client_secret_jwt", cfg.Secret
		} else {
			c.Keys = []jose.JSONWebKey{{Key: cfg.Key.Public(), KeyID: name + "-key", Use: "sig"}}
		}
		clients = append(clients, c)
	}
	srv := oidctest.Start(t, oidctest.Options{Clients: clients})
	hc := srv.HTTPClient()

	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			cfg.ClientID, cfg.TokenURL = name, srv.TokenURL
			if cfg.Key != nil {
				cfg.KeyID = name + "-key"
			}
			a, err := NewSignedAssertion(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Twice in a row: the provider refuses a reused jti, so the
			// second succeeds only if it was minted anew.
			for i := range 2 {
				if got := postClientCredentials(t, hc, srv.TokenURL, url.Values{}, a); got != http.StatusOK {
					t.Fatalf("request %d: status %d", i+1, got)
				}
			}
		})
	}
	// A retry after a 5xx carries a new jti, which the provider accepts.
	a, _ := NewSignedAssertion(AssertionConfig{ClientID: "p256", TokenURL: srv.TokenURL, Key: k["p256"], KeyID: "p256-key"})
	srv.Reset()
	srv.FailNext(http.StatusServiceUnavailable, 1)
	if got := postClientCredentials(t, hc, srv.TokenURL, url.Values{}, a); got != http.StatusServiceUnavailable {
		t.Fatalf("injected failure: status %d", got)
	}
	if got := postClientCredentials(t, hc, srv.TokenURL, url.Values{}, a); got != http.StatusOK {
		t.Fatalf("retry: status %d", got)
	}
	reqs := srv.Records().TokenRequests
	if reqs[0].ClientAssertion.Claims["jti"] == reqs[1].ClientAssertion.Claims["jti"] {
		t.Fatalf("the retry reused jti %v", reqs[0].ClientAssertion.Claims["jti"])
	}
}

func TestAssertionFileAgainstARealServer(t *testing.T) {
	key := testKeys()["ed25519"]
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "workload", AuthMethod: "private_key_jwt", Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k", Use: "sig"}}},
	}})
	// The platform's part: it writes a fresh token to the file.
	platform, _ := NewSignedAssertion(AssertionConfig{ClientID: "workload", TokenURL: srv.TokenURL, Key: key, KeyID: "k"})
	path := filepath.Join(t.TempDir(), "token")
	rotate := func() string {
		tok, _ := platform.Assertion()
		writeFile(t, path, []byte(tok+"\n"))
		return tok
	}
	file := AssertionFile(path)
	for i := range 2 {
		want := rotate()
		if got := postClientCredentials(t, srv.HTTPClient(), srv.TokenURL, url.Values{}, file); got != http.StatusOK {
			t.Fatalf("after rotation %d: status %d", i+1, got)
		}
		if got := srv.Records().TokenRequests[i].Params.Get("client_assertion"); got != want {
			t.Fatalf("request %d sent a stale assertion", i+1)
		}
	}
}

func TestTLSClientAuthRotationAgainstARealServer(t *testing.T) {
	srv := oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{
		{ID: "mtls", AuthMethod: "tls_client_auth", SubjectDN: "CN=authproxy,O=authproxy tests"},
	}})
	subject := pkix.Name{CommonName: "authproxy", Organization: []string{"authproxy tests"}}
	v1, v2 := srv.ClientCert(subject), srv.ClientCert(subject)
	dir := t.TempDir()
	files := struct{ cert, key, ca string }{filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")}
	writeFile(t, files.ca, srv.CA.PEM)
	writeFile(t, files.cert, v1.CertPEM)
	writeFile(t, files.key, v1.KeyPEM)
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg, cc, err := pki.NewTLSConfig(pki.TLSFiles{CAFile: files.ca, CertFile: files.cert, KeyFile: files.key, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: cc.Transport(&http.Transport{TLSClientConfig: cfg})}
	form := func() url.Values { return url.Values{"client_id": {"mtls"}} }
	steps := []struct {
		write   func()
		serial  string
		comment string
	}{
		{func() {}, serialOf(v1), "first certificate"},
		{func() { writeFile(t, files.cert, v2.CertPEM) }, serialOf(v1), "new certificate, old key"},
		{func() { writeFile(t, files.key, v2.KeyPEM) }, serialOf(v2), "new pair"},
	}
	for i, s := range steps {
		s.write()
		clk.Advance(time.Second)
		if got := postClientCredentials(t, hc, srv.TokenURL, form(), nil); got != http.StatusOK {
			t.Fatalf("%s: status %d", s.comment, got)
		}
		rec := srv.Records().TokenRequests[i]
		if strings.TrimLeft(strings.ToUpper(rec.ClientCertSerial), "0") != s.serial || rec.AuthMethod != "tls_client_auth" {
			t.Fatalf("%s: the server saw serial %s (method %q), want %s", s.comment, rec.ClientCertSerial, rec.AuthMethod, s.serial)
		}
	}
}

func serialOf(p testpki.Pair) string { return fmt.Sprintf("%X", p.Leaf.SerialNumber) }
