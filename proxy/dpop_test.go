package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/internal/dpoptest"
)

type dpopSetup struct {
	as    *dpoptest.AS
	rs    *dpoptest.RS
	proxy testProxy
	key   *auth.DPoPKey
	der   []byte // the private key, to look for in what the proxy says
}

// startDPoP runs a token endpoint, a resource server that checks every
// proof, and the proxy in front of it with a DPoP key.
func startDPoP(t *testing.T, rsNonce dpoptest.NonceMode) *dpopSetup {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	key, err := auth.NewDPoPKey(priv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	as := dpoptest.StartAS(t)
	as.Nonce = dpoptest.RequireNonce
	rs := dpoptest.StartRS(t, as)
	rs.Nonce = rsNonce
	cache := auth.NewCache(&auth.ClientCredentials{Client: auth.Client{TokenURL: as.TokenURL(), ClientID: "id", ClientSecret: "s", DPoP: key}}, auth.CacheOptions{})
	t.Cleanup(func() { cache.Close() })
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, rs.URL+"/base"), PathPrefix: "/api", Tokens: cache, DPoP: key,
		ReplayOn: []int{http.StatusUnauthorized}, MaxReplayBody: 1 << 20})
	return &dpopSetup{as: as, rs: rs, proxy: p, key: key, der: der}
}

func (d *dpopSetup) do(t *testing.T, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, d.proxy.URL+path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every request gets its own proof, for its method and its URL as sent
// upstream without query, with the token's hash; the client's DPoP
// header never passes. The resource server refuses anything else, so
// each 200 is a proof it verified.
func TestDPoPEveryRequestCarriesItsOwnProof(t *testing.T) {
	d := startDPoP(t, dpoptest.NoNonce)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/items?secret=q", ""},
		{"POST", "/api/items", `{"a":1}`},
		{"DELETE", "/api/items/a%2Fb", ""},
		{"GET", "/api/items?secret=q", ""},
	} {
		if code, body := d.do(t, r.method, r.path, r.body, "DPoP", "the-clients-own-proof", "Authorization", "Bearer client"); code != 200 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, code, body)
		}
	}
	ev := d.rs.Events()
	if len(ev) != 4 {
		t.Fatalf("%d requests upstream, want 4: %+v", len(ev), ev)
	}
	jtis := map[string]bool{}
	for _, e := range ev {
		if e.Status != 200 || len(e.DPoP) != 1 || e.DPoP[0] == "the-clients-own-proof" {
			t.Fatalf("event %+v: want one proof of the proxy's, accepted", e)
		}
		if strings.Contains(e.Proof.HTU, "?") || !strings.HasPrefix(e.Proof.HTU, d.rs.URL+"/base/items") {
			t.Fatalf("htu %q: want the upstream URL without query", e.Proof.HTU)
		}
		if e.Proof.JKT != d.key.Thumbprint() {
			t.Fatalf("proof of key %s, want %s", e.Proof.JKT, d.key.Thumbprint())
		}
		jtis[e.Proof.JTI] = true
	}
	if len(jtis) != 4 {
		t.Fatal("a jti was used twice")
	}
	if ev[1].Body != `{"a":1}` {
		t.Fatalf("body %q", ev[1].Body)
	}
	// One token for all four (the token endpoint asked for its nonce once).
	if n := len(d.as.Events()); n != 2 {
		t.Fatalf("%d token requests, want 2 (use_dpop_nonce, then the token)", n)
	}
	assertNoKey(t, d.proxy.logged(), d.der)
}

func assertNoKey(t *testing.T, s string, der []byte) {
	t.Helper()
	for _, enc := range []func([]byte) string{base64.StdEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString} {
		e := enc(der)
		for i := 0; i+16 <= len(e); i += 8 {
			if strings.Contains(s, e[i:i+16]) {
				t.Fatalf("key material in %q", s)
			}
		}
	}
}

// A resource server that wants its nonce gets a new proof with it, for
// the same token: no refresh. The body is sent whole again, and the
// nonce is kept for the next requests.
func TestDPoPResourceNonceRetriesOnceWithoutRefresh(t *testing.T) {
	d := startDPoP(t, dpoptest.RequireNonce)
	if code, body := d.do(t, "POST", "/api/x", "payload"); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	ev := d.rs.Events()
	if len(ev) != 2 || !strings.HasPrefix(ev[0].Error, "use_dpop_nonce") || ev[1].Status != 200 {
		t.Fatalf("events %+v: want use_dpop_nonce, then accepted", ev)
	}
	if ev[0].Token != ev[1].Token || ev[0].Proof.JTI == ev[1].Proof.JTI || ev[1].Proof.Nonce == "" || ev[1].Body != "payload" {
		t.Fatalf("retry %+v after %+v: want the same token, a new proof with the nonce, the same body", ev[1], ev[0])
	}
	if code, _ := d.do(t, "GET", "/api/y", ""); code != 200 {
		t.Fatal(code)
	}
	if ev := d.rs.Events(); len(ev) != 3 {
		t.Fatalf("%d requests: the kept nonce should have been sent at once", len(ev))
	}
	// A new nonce asked for later is taken up the same way.
	d.rs.RotateNonce()
	if code, _ := d.do(t, "GET", "/api/z", ""); code != 200 {
		t.Fatal(code)
	}
	if ev := d.rs.Events(); len(ev) != 5 {
		t.Fatalf("%d requests, want 5", len(ev))
	}
	if n := len(d.as.Events()); n != 2 {
		t.Fatalf("%d token requests, want 2: a nonce never refreshes the token", n)
	}
}

// A server that keeps asking for a new nonce is asked twice; the second
// refusal goes back to the client, with no refresh and no loop.
func TestDPoPNonceLoopDoesNotLoop(t *testing.T) {
	d := startDPoP(t, dpoptest.AlwaysNewNonce)
	code, _ := d.do(t, "GET", "/api/x", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("status %d, want the upstream's 401", code)
	}
	if n := len(d.rs.Events()); n != 2 {
		t.Fatalf("%d requests upstream, want 2", n)
	}
	if n := len(d.as.Events()); n != 2 {
		t.Fatalf("%d token requests, want 2 (the first token's): no refresh", n)
	}
}

// A token the server refuses is refreshed and the request replayed with
// a new proof, for the new token.
func TestDPoPReplayAfter401HasANewProof(t *testing.T) {
	d := startDPoP(t, dpoptest.NoNonce)
	first := ""
	d.rs.Reject = func(tok string) bool {
		if first == "" {
			first = tok
		}
		return tok == first
	}
	if code, body := d.do(t, "PUT", "/api/x", "again"); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	ev := d.rs.Events()
	if len(ev) != 2 || ev[0].Status != 401 || ev[1].Status != 200 || ev[0].Token == ev[1].Token || ev[1].Body != "again" {
		t.Fatalf("events %+v: want a refusal, then the fresh token accepted", ev)
	}
	if ev[0].DPoP[0] == ev[1].DPoP[0] {
		t.Fatal("the replay reused the first proof")
	}
}

// The resource server refuses what the proxy must never send: a proof
// used before, one for another URL or method, the old proof with the
// fresh token. Played against it directly with a proof the proxy made.
func TestDPoPResourceServerRefusesMisusedProofs(t *testing.T) {
	d := startDPoP(t, dpoptest.NoNonce)
	if code, _ := d.do(t, "GET", "/api/x", ""); code != 200 {
		t.Fatal(code)
	}
	sent := d.rs.Events()[0]
	fresh, err := (&auth.ClientCredentials{Client: auth.Client{TokenURL: d.as.TokenURL(), ClientID: "id", ClientSecret: "s", DPoP: d.key}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, path, token, want string
	}{
		{"reused", "GET", "/base/x", sent.Token, "used before"},
		{"another URL", "GET", "/base/y", sent.Token, "htu"},
		{"another method", "POST", "/base/x", sent.Token, "htm"},
		{"the old proof with a fresh token", "GET", "/base/x", fresh.AccessToken, "ath"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, d.rs.URL+tt.path, nil)
			req.Header.Set("Authorization", "DPoP "+tt.token)
			req.Header.Set("DPoP", sent.DPoP[0])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ev := d.rs.Events()
			last := ev[len(ev)-1]
			if resp.StatusCode != 401 || !strings.Contains(last.Error, tt.want) {
				t.Fatalf("%d %q, want 401 naming %s", resp.StatusCode, last.Error, tt.want)
			}
		})
	}
	// A Bearer presentation of the bound token is refused too.
	req, _ := http.NewRequest("GET", d.rs.URL+"/base/x", nil)
	req.Header.Set("Authorization", "Bearer "+sent.Token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("Bearer: %v %v", resp, err)
	}
}

// A nonce sent with any answer, a 200 too, is the one the next proof
// carries (RFC 9449 9).
func TestDPoPNonceFromAnyAnswerIsKept(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, err := auth.NewDPoPKey(priv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var nonces []string
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, rec upstreamRecord) {
		w.Header().Set("DPoP-Nonce", "n-"+r.URL.Path[1:])
		w.Write([]byte("ok"))
	})
	p := startProxy(t, Upstream{Name: "api", Target: mustURL(t, up.URL), Tokens: &fakeTokens{tokenType: "DPoP"}, DPoP: key})
	for _, path := range []string{"/1", "/2", "/3"} {
		resp, err := http.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, rec := range up.requests() {
		if rec.header.Get("Authorization") != "DPoP t1" {
			t.Fatalf("Authorization %q, want the token's own scheme, DPoP", rec.header.Get("Authorization"))
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(rec.header.Get("Dpop"), ".")[1])
		nonces = append(nonces, string(payload))
	}
	if strings.Contains(nonces[0], "nonce") || !strings.Contains(nonces[1], `"nonce":"n-1"`) || !strings.Contains(nonces[2], `"nonce":"n-2"`) {
		t.Fatalf("proofs %q: want no nonce, then each answer's", nonces)
	}
}

// The read of a nonce challenge's body, before the DPoP retry, is under
// upstream_idle_timeout as the read before a replay is: an upstream that
// sends the 401 headers and then nothing is cut off after the timeout
// with 504, and the request is not sent again.
func TestDPoPStalledNonceChallengeIsCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key, err := auth.NewDPoPKey(priv, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		api := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent++
			h := http.Header{"Www-Authenticate": {`DPoP error="use_dpop_nonce"`}, "Dpop-Nonce": {"n-1"}, "Content-Length": {"100"}}
			return &http.Response{StatusCode: 401, Header: h, ContentLength: 100, Body: newFakeUpstreamBody(), Request: r}, nil
		})
		h, err := New([]Upstream{{Name: "api", Target: mustURL(t, "http://api.example"), Tokens: &fakeTokens{tokenType: "DPoP"},
			Transport: api, DPoP: key, ReplayOn: []int{401}, IdleTimeout: time.Second}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("answered after %s, want the idle timeout, 1s", waited)
		}
		if w.Code != http.StatusGatewayTimeout || sent != 1 {
			t.Errorf("got %d %s after %d requests upstream; want 504 after 1", w.Code, w.Body, sent)
		}
	})
}
