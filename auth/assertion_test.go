package auth

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/testpki"
)

const testTokenURL = "https://idp.test/oauth2/token"

// verifyAssertion checks the signature with the verification key, as the
// provider would, and returns the header and the raw claims.
func verifyAssertion(t *testing.T, s string, alg SigningAlg, verifyKey any) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSigned(s, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("parse assertion: %v", err)
	}
	payload, err := jws.Verify(verifyKey)
	if err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header, claims
}

func TestSignedAssertionClaims(t *testing.T) {
	k := testKeys()
	clk := newFakeClock()
	secret := strings.Repeat("s", 32)
	for _, tc := range []struct {
		name   string
		cfg    AssertionConfig
		alg    SigningAlg
		verify any
	}{
		{"rsa default", AssertionConfig{Key: k["rsa"]}, RS256, k["rsa"].Public()},
		{"rsa PS256", AssertionConfig{Key: k["rsa"], Alg: PS256}, PS256, k["rsa"].Public()},
		{"p256", AssertionConfig{Key: k["p256"]}, ES256, k["p256"].Public()},
		{"p384", AssertionConfig{Key: k["p384"]}, ES384, k["p384"].Public()},
		{"ed25519", AssertionConfig{Key: k["ed25519"]}, EdDSA, k["ed25519"].Public()},
		{"hs256 default", AssertionConfig{Secret: secret}, HS256, []byte(secret)},
		{"hs512", AssertionConfig{Secret: strings.Repeat("s", 64), Alg: HS512}, HS512, []byte(strings.Repeat("s", 64))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ClientID, cfg.TokenURL, cfg.KeyID, cfg.Now = "my-client", testTokenURL, "key-1", clk.Now
			a, err := NewSignedAssertion(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := a.Assertion()
			if err != nil {
				t.Fatal(err)
			}
			h, c := verifyAssertion(t, s, tc.alg, tc.verify)
			if h.Algorithm != string(tc.alg) || h.KeyID != "key-1" || h.ExtraHeaders["typ"] != "JWT" {
				t.Errorf("header alg %q kid %q typ %v", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"])
			}
			now := float64(clk.Now().Unix())
			want := map[string]any{
				"iss": "my-client", "sub": "my-client",
				// A single audience as a string: some providers refuse an array.
				"aud": testTokenURL,
				"iat": now, "nbf": now, "exp": now + 60,
			}
			for name, v := range want {
				if c[name] != v {
					t.Errorf("claim %s = %v, want %v", name, c[name], v)
				}
			}
			if jti, _ := c["jti"].(string); len(jti) < 22 {
				t.Errorf("jti %q is not 128 random bits", jti)
			}
		})
	}
}

// Every call mints anew: a retry after a 5xx must not resend a jti the
// server may already have seen (RFC 7523 3, item 7).
func TestSignedAssertionIsFreshOnEveryCall(t *testing.T) {
	clk := newFakeClock()
	a, err := NewSignedAssertion(AssertionConfig{ClientID: "c", TokenURL: testTokenURL, Key: testKeys()["p256"], Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var exps []float64
	for range 3 {
		s, err := a.Assertion()
		if err != nil {
			t.Fatal(err)
		}
		_, c := verifyAssertion(t, s, ES256, testKeys()["p256"].Public())
		jti := c["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %s minted twice", jti)
		}
		seen[jti] = true
		exps = append(exps, c["exp"].(float64))
		clk.Advance(10 * time.Second)
	}
	if exps[1]-exps[0] != 10 || exps[2]-exps[1] != 10 {
		t.Fatalf("exp did not follow the clock: %v", exps)
	}
}

func TestSignedAssertionAudienceAndCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "entra test")
	pair := ca.Issue(t, testpki.Leaf{})
	key := pair.TLS.PrivateKey.(crypto.Signer)
	a, err := NewSignedAssertion(AssertionConfig{
		ClientID: "c", TokenURL: testTokenURL, Audience: "https://login.test/tenant/v2.0",
		Key: key, Certificate: pair.Leaf,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := a.Assertion()
	h, c := verifyAssertion(t, s, ES256, key.Public())
	if c["aud"] != "https://login.test/tenant/v2.0" {
		t.Errorf("aud %v, want the configured audience", c["aud"])
	}
	sum := sha256.Sum256(pair.Leaf.Raw)
	if got := h.ExtraHeaders["x5t#S256"]; got != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("x5t#S256 header %v", got)
	}
	if h.ExtraHeaders["x5t"] == nil || h.KeyID != "" {
		t.Errorf("x5t %v, kid %q", h.ExtraHeaders["x5t"], h.KeyID)
	}
}

func TestNewSignedAssertionRefusals(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		name string
		cfg  AssertionConfig
		want string
	}{
		{"no client id", AssertionConfig{TokenURL: testTokenURL, Key: k["p256"]}, "client_id is required"},
		{"no audience", AssertionConfig{ClientID: "c", Key: k["p256"]}, "no audience"},
		{"nothing to sign with", AssertionConfig{ClientID: "c", TokenURL: testTokenURL}, "no private key"},
		{"key and secret", AssertionConfig{ClientID: "c", TokenURL: testTokenURL, Key: k["p256"], Secret: "s"}, "both a private key and a client secret"},
		{"alg does not fit key", AssertionConfig{ClientID: "c", TokenURL: testTokenURL, Key: k["p256"], Alg: RS256}, `"RS256" does not fit the EC P-256 key`},
		{"asymmetric alg with secret", AssertionConfig{ClientID: "c", TokenURL: testTokenURL, Secret: "s", Alg: ES256}, `"ES256" does not fit client_secret_jwt`},
		// RFC 7518 3.2, which go-jose enforces when it signs: refused
		// here, at start, rather than by every token request.
		{"secret too short for HS256", AssertionConfig{ClientID: "c", TokenURL: testTokenURL, Secret: strings.Repeat("s", 31)}, "the client secret is 31 bytes; HS256 needs 32 or more"},
		{"secret too short for HS512", AssertionConfig{ClientID: "c", TokenURL: testTokenURL, Secret: strings.Repeat("s", 48), Alg: HS512}, "the client secret is 48 bytes; HS512 needs 64 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSignedAssertion(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAssertionFileIsReadOnEveryCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	f := AssertionFile(path)
	if _, err := f.Assertion(); !errors.Is(err, ErrTokenFile) || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(path, []byte("\n  \n"), 0o600)
	if _, err := f.Assertion(); !errors.Is(err, ErrTokenFile) || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty file: %v", err)
	}
	for _, jwt := range []string{"aaa.bbb.ccc", "ddd.eee.fff"} {
		// The platform rotates the token by replacing the file.
		os.WriteFile(path, []byte(jwt+"\n"), 0o600)
		got, err := f.Assertion()
		if err != nil || got != jwt {
			t.Fatalf("Assertion() = %q, %v; want %q", got, err, jwt)
		}
	}
	os.WriteFile(path, []byte("opaque-secret-value"), 0o600)
	_, err := f.Assertion()
	if err == nil || !strings.Contains(err.Error(), "does not hold a JWT") || strings.Contains(err.Error(), "opaque-secret-value") {
		t.Fatalf("not a JWT: %v", err)
	}
}
