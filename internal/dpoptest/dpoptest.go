// Package dpoptest is a token endpoint and a resource server that check
// DPoP proofs (RFC 9449) the way section 7 (and 4.3 for the token
// endpoint) says, and refuse everything else: written from the RFC, not
// from authproxy's code, so that a test against them shows that the
// proofs hold, not that they match our own idea of them.
//
// Both run on 127.0.0.1 (httptest). The token endpoint issues opaque
// tokens, or JWTs with cnf.jkt, bound to the proof's key; the resource
// server knows each token's key from it, as introspection would tell it.
package dpoptest

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Window is how far a proof's iat may be from the server's clock.
const Window = 60 * time.Second

// Verifier checks proofs; it remembers every jti it accepted.
type Verifier struct {
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]bool
}

// Proof is what a verified proof says.
type Proof struct {
	JKT                       string // the thumbprint of its jwk
	JTI, HTM, HTU, Nonce, ATH string
	IAT                       int64
}

// Verify checks the request's one DPoP header as RFC 9449 4.3 says: a
// JWS of typ dpop+jwt, an asymmetric alg, a public jwk that verifies it,
// htm and htu of this request (url is its URL as the client sent it,
// without query and fragment), iat within Window, a jti never seen, and
// ath when accessToken is not "". A nonce is checked by the caller.
func (v *Verifier) Verify(r *http.Request, url, accessToken string) (*Proof, error) {
	values := r.Header.Values("DPoP")
	if len(values) != 1 {
		return nil, fmt.Errorf("%d DPoP headers, want exactly one", len(values))
	}
	jws, err := jose.ParseSigned(values[0], []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256, jose.RS384, jose.RS512, jose.PS384, jose.PS512})
	if err != nil {
		return nil, fmt.Errorf("alg or JWS: %v", err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, fmt.Errorf("typ %q, want dpop+jwt", typ)
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.Valid() {
		return nil, errors.New("jwk: missing")
	}
	if !h.JSONWebKey.IsPublic() {
		return nil, errors.New("jwk: holds a private key")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return nil, fmt.Errorf("signature: %v", err)
	}
	var p Proof
	var c struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   *int64 `json:"iat"`
		Nonce string `json:"nonce"`
		ATH   string `json:"ath"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("claims: %v", err)
	}
	sum, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	p = Proof{JKT: base64.RawURLEncoding.EncodeToString(sum), JTI: c.JTI, HTM: c.HTM, HTU: c.HTU, Nonce: c.Nonce, ATH: c.ATH}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	switch {
	case c.HTM != r.Method:
		return nil, fmt.Errorf("htm %q, want %q", c.HTM, r.Method)
	case c.HTU != url:
		return nil, fmt.Errorf("htu %q, want %q", c.HTU, url)
	case c.IAT == nil:
		return nil, errors.New("iat: missing")
	case time.Unix(*c.IAT, 0).Sub(now()).Abs() > Window:
		return nil, fmt.Errorf("iat %d out of the window", *c.IAT)
	case len(c.JTI) < 16:
		return nil, fmt.Errorf("jti %q too short", c.JTI)
	}
	p.IAT = *c.IAT
	if accessToken != "" {
		want := sha256.Sum256([]byte(accessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(want[:]) {
			return nil, errors.New("ath: not the hash of the access token")
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen[c.JTI] {
		return nil, fmt.Errorf("jti %q: a proof used before", c.JTI)
	}
	if v.seen == nil {
		v.seen = map[string]bool{}
	}
	v.seen[c.JTI] = true
	return &p, nil
}

// NonceMode is how a server asks for nonces.
type NonceMode int

const (
	// NoNonce never asks.
	NoNonce NonceMode = iota
	// RequireNonce asks once, and takes the nonce it gave until Rotate.
	RequireNonce
	// AlwaysNewNonce refuses every proof with a new nonce: a server that
	// keeps asking.
	AlwaysNewNonce
)

// nonces gives and checks one server's nonces.
type nonces struct {
	mu      sync.Mutex
	current string
}

func (n *nonces) check(mode NonceMode, got string) (ok bool, next string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if mode == NoNonce {
		return true, ""
	}
	if n.current == "" || mode == AlwaysNewNonce {
		n.current = rand.Text()
		return false, n.current
	}
	return got == n.current, n.current
}

// rotate makes the next proof need a new nonce.
func (n *nonces) rotate() {
	n.mu.Lock()
	n.current = rand.Text()
	n.mu.Unlock()
}

// Event is one request a server answered, for the test to check.
type Event struct {
	Method, Path string
	Status       int
	Error        string // why it was refused; "" if accepted
	Proof        *Proof
	Token        string
	DPoP         []string // the DPoP headers as they came
	Body         string
}

// Log records events.
type Log struct {
	mu     sync.Mutex
	events []Event
}

func (l *Log) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// Events are the requests answered so far.
func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// AS is a token endpoint at /token that binds its tokens to the key of
// the request's proof.
type AS struct {
	*httptest.Server
	Log
	// Nonce is how it asks for nonces (use_dpop_nonce, RFC 9449 8).
	Nonce NonceMode
	// JWT issues JWT access tokens with cnf.jkt rather than opaque ones;
	// BindTo, if set, is the jkt they name instead of the proof's.
	JWT    bool
	BindTo string
	// TokenType is answered instead of DPoP when set.
	TokenType string
	// Lifetime is expires_in; zero sends 3600.
	Lifetime time.Duration

	v      Verifier
	nonces nonces
	mu     sync.Mutex
	bound  map[string]string // token -> jkt
	n      int
}

// StartAS runs a token endpoint until the test ends; set its fields
// before the first request.
func StartAS(t testing.TB) *AS {
	as := &AS{bound: map[string]string{}}
	as.Server = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.Close)
	return as
}

// TokenURL is the token endpoint's URL.
func (as *AS) TokenURL() string { return as.URL + "/token" }

// JKT is the key a token was bound to; "" for a token it did not issue.
func (as *AS) JKT(token string) string {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.bound[token]
}

func (as *AS) serve(w http.ResponseWriter, r *http.Request) {
	ev := Event{Method: r.Method, Path: r.URL.Path, DPoP: r.Header.Values("DPoP")}
	defer func() { as.add(ev) }()
	refuse := func(code, desc string) {
		ev.Status, ev.Error = http.StatusBadRequest, code+": "+desc
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ev.Status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.URL.Path != "/token" || r.Method != http.MethodPost {
		ev.Status = http.StatusNotFound
		http.NotFound(w, r)
		return
	}
	p, err := as.v.Verify(r, "http://"+r.Host+r.URL.EscapedPath(), "")
	if err != nil {
		refuse("invalid_dpop_proof", err.Error())
		return
	}
	ev.Proof = p
	if ok, next := as.nonces.check(as.Nonce, p.Nonce); !ok {
		w.Header().Set("DPoP-Nonce", next)
		refuse("use_dpop_nonce", "the proof needs the server's nonce")
		return
	}
	jkt := p.JKT
	if as.BindTo != "" {
		jkt = as.BindTo
	}
	as.mu.Lock()
	as.n++
	tok := fmt.Sprintf("dpop-token-%d-%s", as.n, rand.Text())
	if as.JWT {
		enc := base64.RawURLEncoding.EncodeToString
		claims, _ := json.Marshal(map[string]any{"sub": "client", "jti": rand.Text(), "cnf": map[string]string{"jkt": jkt}})
		tok = enc([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." + enc(claims) + "." + enc([]byte("not-verified-by-the-client"))
	}
	as.bound[tok] = jkt
	as.mu.Unlock()
	ev.Status, ev.Token = http.StatusOK, tok
	typ := "DPoP"
	if as.TokenType != "" {
		typ = as.TokenType
	}
	life := as.Lifetime
	if life == 0 {
		life = time.Hour
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": typ, "expires_in": int(life.Seconds())})
}

// RS is a resource server that takes only `Authorization: DPoP <token>`
// of tokens its AS bound, each with a valid proof of the token's key for
// exactly this request.
type RS struct {
	*httptest.Server
	Log
	// Nonce is how it asks for nonces (RFC 9449 9).
	Nonce NonceMode
	// Reject, if set, refuses a token with 401 invalid_token (revoked).
	Reject func(token string) bool

	as     *AS
	v      Verifier
	nonces nonces
}

// StartRS runs a resource server that trusts as's tokens.
func StartRS(t testing.TB, as *AS) *RS {
	rs := &RS{as: as}
	rs.Server = httptest.NewServer(http.HandlerFunc(rs.serve))
	t.Cleanup(rs.Close)
	return rs
}

// RotateNonce makes the next request need a new nonce.
func (rs *RS) RotateNonce() { rs.nonces.rotate() }

func (rs *RS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ev := Event{Method: r.Method, Path: r.URL.Path, DPoP: r.Header.Values("DPoP"), Body: string(body)}
	defer func() { rs.add(ev) }()
	refuse := func(errCode, desc string) {
		ev.Status, ev.Error = http.StatusUnauthorized, errCode+": "+desc
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP error=%q, error_description=%q, algs="ES256 ES384 EdDSA RS256 PS256"`, errCode, desc))
		w.WriteHeader(ev.Status)
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != "DPoP" || tok == "" {
		refuse("invalid_token", fmt.Sprintf("scheme %q, want DPoP", scheme))
		return
	}
	ev.Token = tok
	jkt := rs.as.JKT(tok)
	if jkt == "" || rs.Reject != nil && rs.Reject(tok) {
		refuse("invalid_token", "unknown or revoked token")
		return
	}
	p, err := rs.v.Verify(r, "http://"+r.Host+r.URL.EscapedPath(), tok)
	if err != nil {
		refuse("invalid_dpop_proof", err.Error())
		return
	}
	ev.Proof = p
	if p.JKT != jkt {
		refuse("invalid_token", "cnf.jkt: the proof's key is not the token's")
		return
	}
	if ok, next := rs.nonces.check(rs.Nonce, p.Nonce); !ok {
		w.Header().Set("DPoP-Nonce", next)
		refuse("use_dpop_nonce", "the proof needs the server's nonce")
		return
	}
	ev.Status = http.StatusOK
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "ok %s %s", r.Method, r.URL.Path)
}
