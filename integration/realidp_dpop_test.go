package integration

// DPoP (RFC 9449, issue 25) against the real oidc-provider: its token
// endpoint requires a proof with its own nonce, and binds the tokens of
// clients registered dpop_bound_access_tokens; the API behind the proxy
// takes a token only with a proof that verifies (internal/dpoptest's
// checks of RFC 9449 section 7) made with the key the provider says the
// token is bound to (introspection's cnf.jkt).

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/dpoptest"
	"github.com/authproxy/authproxy/internal/oidctest"
)

// dpopAPI serves an API that takes `Authorization: DPoP <token>` only:
// the token active and wantClient's at the provider, and a proof of
// exactly this request by the key the token is bound to. It counts what
// it accepted, and the proofs and bindings it refused.
func (r *realIdP) dpopAPI(t *testing.T, wantClient string, accepted, refused *int, mu *sync.Mutex) string {
	hc := r.HTTPClient()
	v := &dpoptest.Verifier{}
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// A token that expired on the way (two-second tokens on a loaded
		// machine) is refused too, and replayed by the proxy; only a
		// refused proof or binding is counted.
		fail := func(why string) {
			mu.Lock()
			if !strings.HasPrefix(why, "token not active") {
				*refused++
			}
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"invalid_token","why":%q}`, why)
		}
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "DPoP ")
		if !ok {
			fail("not the DPoP scheme")
			return
		}
		proof, err := v.Verify(req, "http://"+req.Host+req.URL.EscapedPath(), tok)
		if err != nil {
			fail("proof: " + err.Error())
			return
		}
		in := r.introspectDPoP(hc, tok)
		switch {
		case !in.Active || in.ClientID != wantClient:
			fail("token not active, or another client's")
			return
		case in.Cnf.JKT == "" || in.Cnf.JKT != proof.JKT:
			fail(fmt.Sprintf("cnf.jkt %q, proof of key %q", in.Cnf.JKT, proof.JKT))
			return
		}
		mu.Lock()
		*accepted++
		mu.Unlock()
		json.NewEncoder(w).Encode(apiAnswer{ClientID: in.ClientID, Path: req.URL.Path})
	}))
}

type dpopIntrospection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id"`
	TokenType string `json:"token_type"`
	Cnf       struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

func (r *realIdP) introspectDPoP(hc *http.Client, tok string) (in dpopIntrospection) {
	req, _ := http.NewRequest(http.MethodPost, r.IntrospectionURL, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(introspectorID, introspectorSecret)
	resp, err := hc.Do(req)
	if err != nil {
		return in
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&in)
	return in
}

func thumbprintOf(t *testing.T, k crypto.Signer) string {
	t.Helper()
	sum, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// client_credentials (client_secret_post), private_key_jwt, and a public
// client's refresh tokens after `authproxy login`, rotated on every use
// and bound to the key: every token request carries a proof, the first
// of each client is refused for want of the provider's nonce and retried
// once with it, every token is DPoP and bound to the upstream's key, and
// the API accepts every request. /status shows each key's thumbprint,
// and no key reaches the logs or anything the proxy answered.
func TestRealServerDPoP(t *testing.T) {
	names := []string{"cc", "pkjwt", "public"}
	assertionKey := newSigner(t, "ec")
	dpopKeys := map[string]crypto.Signer{"cc": newSigner(t, "ec"), "pkjwt": newSigner(t, "ed25519"), "public": newSigner(t, "ec")}
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	idp := startRealIdP(t, oidctest.Options{AccessTokenTTL: 2 * time.Second, DPoPNonces: true, Clients: []oidctest.Client{
		{ID: "cc", Secret: realSecret, AuthMethod: "client_secret_post", DPoPBound: true},
		{ID: "pkjwt", AuthMethod: "private_key_jwt", Keys: jwks(assertionKey.Public(), "k"), DPoPBound: true},
		{ID: "public", AuthMethod: "none", DPoPBound: true, GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{redirect}},
	}})
	files := map[string]string{}
	for _, name := range names {
		files[name] = idp.write(t, name+"-dpop.pem", keyPEM(t, dpopKeys[name]), 0o600)
	}
	assertionFile := idp.write(t, "assertion.pem", keyPEM(t, assertionKey), 0o600)
	var mu sync.Mutex
	accepted, refused := map[string]*int{}, map[string]*int{}
	apis := map[string]string{}
	for _, name := range names {
		accepted[name], refused[name] = new(int), new(int)
		apis[name] = idp.dpopAPI(t, name, accepted[name], refused[name], &mu)
	}
	tls := "      tls: {ca_file: " + idp.caFile + "}\n      refresh_before: 1s\n"
	dpop := func(name string) string { return "      dpop: {private_key_file: " + files[name] + "}\n" }
	cfg := realIdPConfig("") +
		upstream("cc", apis["cc"], idp.TokenURL, "      client_id: cc\n      client_secret: "+realSecret+"\n"+tls+dpop("cc")) +
		upstream("pkjwt", apis["pkjwt"], idp.TokenURL, "      client_id: pkjwt\n      auth_method: private_key_jwt\n      private_key_file: "+assertionFile+
			"\n      key_id: k\n"+tls+dpop("pkjwt")) +
		upstream("public", apis["public"], idp.TokenURL, "      client_id: public\n      auth_method: none\n      grant_type: refresh_token\n      authorize_url: "+idp.AuthorizeURL+
			"\n      scopes: [openid, offline_access]\n      redirect_uri: "+redirect+"\n"+tls+dpop("public"))
	configPath := filepath.Join(idp.dir, "proxy.yaml")
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	loginWith(t, idp, configPath, "public", redirect)

	p := runProxy(t, idp.dir, cfg)
	refreshes := func() int {
		n := 0
		for _, r := range idp.Records().TokenRequests {
			if r.Params.Get("client_id") == "public" && r.GrantType == "refresh_token" && r.Status == 200 {
				n++
			}
		}
		return n
	}
	// Two-second tokens refreshed a second early: requests keep flowing
	// while the public client's refresh token rotates three times.
	waitFor(t, "three rotations of the public client's refresh token", func() bool {
		for _, name := range names {
			if status, a, body := p.getAPI("/" + name + "/things?page=2"); status != 200 || a.ClientID != name {
				t.Fatalf("%s: %d %s", name, status, body)
			}
		}
		return refreshes() >= 3
	})
	status, body := p.get(p.admin + "/status")
	var st []struct {
		Upstream, State string
		DPoPJKT         string `json:"dpop_jkt"`
	}
	if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil {
		t.Fatalf("/status: %d %s", status, body)
	}
	for _, u := range st {
		if u.DPoPJKT != thumbprintOf(t, dpopKeys[u.Upstream]) {
			t.Errorf("/status of %s shows dpop_jkt %q, want the key's thumbprint", u.Upstream, u.DPoPJKT)
		}
	}
	p.stop()

	for _, name := range names {
		if *refused[name] != 0 || *accepted[name] == 0 {
			t.Errorf("%s: the API refused %d requests and accepted %d", name, *refused[name], *accepted[name])
		}
	}
	nonceAsked := map[string]int{}
	for i, r := range idp.Records().TokenRequests {
		name := r.Params.Get("client_id")
		if dpopKeys[name] == nil {
			continue
		}
		if r.DPoP == nil || r.DPoP.Malformed || r.DPoP.Header["typ"] != "dpop+jwt" {
			t.Fatalf("token request %d (%s, %s) carried no DPoP proof: %+v", i, name, r.GrantType, r.DPoP)
		}
		jwk, _ := json.Marshal(r.DPoP.Header["jwk"])
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(jwk); err != nil || !key.IsPublic() {
			t.Fatalf("token request %d: jwk %s: want the public key (%v)", i, jwk, err)
		}
		if sum, _ := key.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(sum) != thumbprintOf(t, dpopKeys[name]) {
			t.Errorf("token request %d of %s proved another key", i, name)
		}
		switch {
		case r.Status == 400 && r.Error == "use_dpop_nonce":
			nonceAsked[name]++
			if r.DPoP.Claims["nonce"] != nil {
				t.Errorf("token request %d of %s: the nonce it sent was refused", i, name)
			}
		case r.Status != 200 || r.TokenType != "DPoP":
			t.Errorf("token request %d of %s (%s): status %d %s, token_type %q", i, name, r.GrantType, r.Status, r.Error, r.TokenType)
		case r.DPoP.Claims["nonce"] == nil:
			t.Errorf("token request %d of %s got a token without the nonce", i, name)
		}
	}
	for _, name := range names {
		// Once for the first request of each, the login's code exchange
		// included; the nonce is kept, and renewed from every answer.
		if nonceAsked[name] == 0 {
			t.Errorf("%s: the provider never asked for its nonce: requireNonce is not on", name)
		}
	}
	if n := len(idp.Records().AssertionJTIs); n == 0 {
		t.Error("the private_key_jwt client sent no assertion")
	}
	seen := p.logs.String() + strings.Join(p.seen, "\n")
	for _, name := range names {
		for _, form := range keyForms(t, keyPEM(t, dpopKeys[name])) {
			if strings.Contains(seen, form) {
				t.Fatalf("the %s DPoP key shows in the logs or an answer", name)
			}
		}
	}
}
