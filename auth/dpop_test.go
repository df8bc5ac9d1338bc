package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/dpoptest"
	"github.com/authproxy/authproxy/pki"
)

func writeKey(t *testing.T, key crypto.Signer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dpop.pem")
	if err := os.WriteFile(path, pkcs8(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func decodeProof(t *testing.T, proof string) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("the proof does not verify with its own jwk: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

func TestDPoPProofClaims(t *testing.T) {
	clock := newFakeClock()
	for name, want := range map[string]SigningAlg{"p256": ES256, "p384": ES384, "ed25519": EdDSA, "rsa": RS256} {
		t.Run(name, func(t *testing.T) {
			key := testKeys()[name]
			k, err := NewDPoPKey(key, "", clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg() != want {
				t.Fatalf("alg %s, want %s", k.Alg(), want)
			}
			u, _ := url.Parse("https://API.example:8443/v1/a%2Fb?q=secret#frag")
			k.SetNonce(u, "n-1")
			proof, err := k.Proof("PATCH", u, "the-access-token")
			if err != nil {
				t.Fatal(err)
			}
			h, c := decodeProof(t, proof)
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != "dpop+jwt" || h.Algorithm != string(want) {
				t.Fatalf("typ %v alg %s", typ, h.Algorithm)
			}
			if !h.JSONWebKey.IsPublic() || h.KeyID != "" {
				t.Fatalf("jwk %+v: want the public key alone", h.JSONWebKey)
			}
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(proof, ".")[0])
			if strings.Contains(string(raw), `"d"`) || strings.Contains(string(raw), `"p"`) {
				t.Fatalf("the header holds private key parameters: %s", raw)
			}
			ath := sha256.Sum256([]byte("the-access-token"))
			for claim, v := range map[string]any{"htm": "PATCH", "htu": "https://API.example:8443/v1/a%2Fb", "nonce": "n-1",
				"iat": float64(clock.Now().Unix()), "ath": base64.RawURLEncoding.EncodeToString(ath[:])} {
				if c[claim] != v {
					t.Errorf("%s = %v, want %v", claim, c[claim], v)
				}
			}
			sum, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
			if k.Thumbprint() != base64.RawURLEncoding.EncodeToString(sum) {
				t.Fatal("Thumbprint is not the jwk's RFC 7638 thumbprint")
			}
			again, _ := k.Proof("PATCH", u, "the-access-token")
			if _, c2 := decodeProof(t, again); c2["jti"] == c["jti"] || c["jti"] == "" {
				t.Fatalf("jti %v then %v: want a fresh one for every proof", c["jti"], c2["jti"])
			}
		})
	}
}

func TestDPoPKeyRefusals(t *testing.T) {
	keys := testKeys()
	for _, tt := range []struct {
		key  crypto.Signer
		alg  SigningAlg
		want string
	}{
		{keys["p256"], ES384, "does not fit the EC P-256 key"},
		{keys["ed25519"], ES256, "does not fit the Ed25519 key"},
		{keys["rsa"], HS256, "signs with the client secret"},
	} {
		_, err := NewDPoPKey(tt.key, tt.alg, nil)
		if err == nil || !errors.Is(err, pki.ErrKey) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.alg, err, tt.want)
		}
		assertNoMaterial(t, fmt.Sprint(err), pkcs8(t, tt.key))
	}
}

// The key never shows: not through %v, %+v or %#v, nor in errors.
func TestDPoPKeyPrintsNoMaterial(t *testing.T) {
	for _, name := range []string{"p256", "ed25519", "rsa"} {
		key := testKeys()[name]
		k, err := NewDPoPKey(key, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		var priv []byte
		switch x := key.(type) {
		case *ecdsa.PrivateKey:
			priv = x.D.Bytes()
		case ed25519.PrivateKey:
			priv = x.Seed()
		case *rsa.PrivateKey:
			priv = x.Primes[0].Bytes()
		}
		for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
			assertNoMaterial(t, s, der)
			assertNoMaterial(t, s, priv)
			if !strings.Contains(s, k.Thumbprint()) {
				t.Errorf("%q does not name the key by its thumbprint", s)
			}
		}
	}
}

func dpopClient(t *testing.T, tokenURL string, key crypto.Signer) (*ClientCredentials, *DPoPKey) {
	t.Helper()
	k, err := NewDPoPKey(key, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &ClientCredentials{Client: Client{TokenURL: tokenURL, ClientID: "id", ClientSecret: "s3cret", DPoP: k}}, k
}

// The endpoint asks for a nonce: the grant retries once with it, each
// attempt with a proof of its own, and the token is DPoP.
func TestDPoPTokenRequestNonceRetry(t *testing.T) {
	as := dpoptest.StartAS(t)
	as.Nonce = dpoptest.RequireNonce
	cc, k := dpopClient(t, as.TokenURL(), testKeys()["p256"])
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Type() != "DPoP" || as.JKT(tok.AccessToken) != k.Thumbprint() {
		t.Fatalf("token %v bound to %q, want DPoP bound to %s", tok, as.JKT(tok.AccessToken), k.Thumbprint())
	}
	ev := as.Events()
	if len(ev) != 2 || ev[0].Status != 400 || !strings.HasPrefix(ev[0].Error, "use_dpop_nonce") || ev[1].Status != 200 {
		t.Fatalf("events %+v: want use_dpop_nonce, then the token", ev)
	}
	if ev[0].Proof.Nonce != "" || ev[1].Proof.Nonce == "" || ev[0].Proof.JTI == ev[1].Proof.JTI {
		t.Fatalf("proofs %+v, %+v: want no nonce then the server's, each with its own jti", ev[0].Proof, ev[1].Proof)
	}
	// The nonce is kept: the next request carries it from the start.
	if _, err := cc.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev := as.Events(); len(ev) != 3 || ev[2].Status != 200 {
		t.Fatalf("events %+v: want the next token at the first attempt", ev)
	}
}

// An endpoint that asks for a new nonce every time is asked twice, and
// the grant gives up with its error.
func TestDPoPTokenRequestNonceLoop(t *testing.T) {
	as := dpoptest.StartAS(t)
	as.Nonce = dpoptest.AlwaysNewNonce
	cc, _ := dpopClient(t, as.TokenURL(), testKeys()["ed25519"])
	_, err := cc.Token(context.Background())
	var re *RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "use_dpop_nonce" {
		t.Fatalf("err %v, want the endpoint's use_dpop_nonce", err)
	}
	if n := len(as.Events()); n != 2 {
		t.Fatalf("%d token requests, want 2: one retry with the nonce, no loop", n)
	}
}

func TestDPoPTokenBinding(t *testing.T) {
	t.Run("a Bearer answer is unusable", func(t *testing.T) {
		as := dpoptest.StartAS(t)
		as.TokenType = "Bearer"
		cc, _ := dpopClient(t, as.TokenURL(), testKeys()["p256"])
		_, err := cc.Token(context.Background())
		if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), `token_type "Bearer", not DPoP`) {
			t.Fatalf("err %v, want a token that is not DPoP refused", err)
		}
	})
	t.Run("a JWT bound to another key is unusable", func(t *testing.T) {
		as := dpoptest.StartAS(t)
		as.JWT, as.BindTo = true, "someone-elses-thumbprint"
		cc, _ := dpopClient(t, as.TokenURL(), testKeys()["p256"])
		_, err := cc.Token(context.Background())
		if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "cnf.jkt") {
			t.Fatalf("err %v, want the binding to another key refused, naming cnf.jkt", err)
		}
	})
	t.Run("a JWT bound to the key is taken", func(t *testing.T) {
		as := dpoptest.StartAS(t)
		as.JWT = true
		cc, _ := dpopClient(t, as.TokenURL(), testKeys()["p256"])
		if _, err := cc.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without DPoP, a DPoP answer is still refused", func(t *testing.T) {
		as := dpoptest.StartAS(t)
		cc := &ClientCredentials{Client: Client{TokenURL: as.TokenURL(), ClientID: "id", ClientSecret: "s"}}
		// The test AS refuses a request without a proof: answer as it would.
		_, err := cc.Token(context.Background())
		if err == nil {
			t.Fatal("a request without a proof got a token")
		}
	})
}

// Every grant goes through the endpoint, so each carries a proof: the
// refresh-token grant of a public client too.
func TestDPoPRefreshGrantCarriesProof(t *testing.T) {
	as := dpoptest.StartAS(t)
	as.Nonce = dpoptest.RequireNonce
	k, _ := NewDPoPKey(testKeys()["p256"], "", nil)
	g := &RefreshGrant{Client: Client{TokenURL: as.TokenURL(), ClientID: "public", AuthMethod: AuthNone, DPoP: k},
		Name: "api", InitialRefreshToken: "rt-1", Store: &memStore{}}
	if _, err := g.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok, err := g.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Type() != "DPoP" || as.JKT(tok.AccessToken) != k.Thumbprint() {
		t.Fatalf("token %v: want DPoP bound to the key", tok)
	}
	if ev := as.Events(); len(ev) != 2 || ev[1].Proof == nil {
		t.Fatalf("events %+v", ev)
	}
}

// A new key never takes a token bound to the old one: the thumbprint is
// part of both halves of the Identity.
func TestDPoPKeyJoinsIdentity(t *testing.T) {
	base := Settings{Name: "api", Client: Client{TokenURL: "https://idp.example/token", ClientID: "id"}}
	one, two := base, base
	one.DPoPKeyFile = writeKey(t, testKeys()["p256"])
	two.DPoPKeyFile = writeKey(t, testKeys()["ed25519"])
	ids := []Identity{base.Identity(), one.Identity(), two.Identity()}
	for i := range ids {
		for j := range i {
			if ids[i].Client == ids[j].Client || ids[i].Settings == ids[j].Settings {
				t.Fatalf("identities %d and %d share a part: %+v %+v", i, j, ids[i], ids[j])
			}
		}
	}
	// The same key in another file is the same identity's client.
	same := base
	same.DPoPKeyFile = writeKey(t, testKeys()["p256"])
	if same.Identity().Client != one.Identity().Client {
		t.Fatal("the same key in another file changed the client's identity")
	}
	// The Client NewSource builds fingerprints as the Settings do, so
	// that a stored record is found again.
	c, _, err := one.client(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != one.Identity().Client {
		t.Fatalf("client fingerprint %s, settings' %s", c.Fingerprint(), one.Identity().Client)
	}
}

func TestUsesNonceChallenge(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, tt := range []struct {
		status int
		h      http.Header
		want   bool
	}{
		{401, h("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="x"`, "DPoP-Nonce", "n"), true},
		{401, h("WWW-Authenticate", `Bearer realm="x"`, "WWW-Authenticate", `DPoP algs="ES256", error="use_dpop_nonce"`, "DPoP-Nonce", "n"), true},
		{401, h("WWW-Authenticate", `DPoP error="use_dpop_nonce"`), false}, // no nonce given
		{401, h("WWW-Authenticate", `DPoP error="invalid_token"`, "DPoP-Nonce", "n"), false},
		{400, h("WWW-Authenticate", `DPoP error="use_dpop_nonce"`, "DPoP-Nonce", "n"), false},
	} {
		if got := UsesNonceChallenge(tt.status, tt.h); got != tt.want {
			t.Errorf("%d %v: %v, want %v", tt.status, tt.h, got, tt.want)
		}
	}
}
