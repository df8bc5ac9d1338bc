package fakeapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Request is what the fake API received on a protected path.
type Request struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	Body                         []byte
	// Authorized tells whether the token was accepted.
	Authorized bool
}

// Server is one fake API: its token endpoint and its protected paths.
type Server struct {
	flavor       Flavor
	clientID     string
	clientSecret string
	now          func() time.Time

	mu            sync.Mutex
	tokens        map[string]time.Time // access token -> expiry (zero: none)
	refreshTokens []string
	tokenRequests int
	apiRequests   []Request
	tokenFault    http.HandlerFunc
	tokenGate     <-chan struct{}

	// Three-legged state.
	codes        map[string]authCode
	refreshState map[string]*refreshState // refresh token -> state
	parentOf     map[string]string        // access token -> the refresh token redeemed for it
	redemptions  map[string]int
	exchanged    int // authorization codes exchanged: logins
	invalidGrant int // refresh tokens refused
	revokeOnUse  bool
	denyConsent  bool
	onRefresh    func(refreshToken string)
	apiHook      func(w http.ResponseWriter, r *http.Request, rec *Request) bool
}

// New returns a fake API of the flavor that accepts the given client.
// now is its clock; nil means time.Now.
func New(f Flavor, clientID, clientSecret string, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{flavor: f, clientID: clientID, clientSecret: clientSecret, now: now, tokens: map[string]time.Time{},
		codes: map[string]authCode{}, refreshState: map[string]*refreshState{}, parentOf: map[string]string{}, redemptions: map[string]int{}}
}

// Flavor returns the server's flavor.
func (s *Server) Flavor() Flavor { return s.flavor }

// TokenRequests counts the requests the token endpoint received.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// APIRequests returns the requests the protected paths received.
func (s *Server) APIRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.apiRequests...)
}

// Secrets returns the client secret and every access and refresh token
// issued so far, for tests that search logs and bodies for leaks.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string{s.clientSecret}, s.refreshTokens...)
	for t := range s.tokens {
		out = append(out, t)
	}
	return out
}

// RevokeAll makes every issued token invalid, as a server-side revocation.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Unix(1, 0)
	}
}

// SetExpiresIn changes the lifetime of the tokens issued from now on.
func (s *Server) SetExpiresIn(d time.Duration) {
	s.mu.Lock()
	s.flavor.ExpiresIn = d
	s.mu.Unlock()
}

// SetTokenFault makes the token endpoint answer with h instead (nil
// restores it). The request is still counted.
func (s *Server) SetTokenFault(h http.HandlerFunc) {
	s.mu.Lock()
	s.tokenFault = h
	s.mu.Unlock()
}

// SetTokenGate holds every token answer until gate is closed (nil: no
// gate), so a test can make sure many requests are waiting at once.
func (s *Server) SetTokenGate(gate <-chan struct{}) {
	s.mu.Lock()
	s.tokenGate = gate
	s.mu.Unlock()
}

// SetAPIHook lets a test answer API requests itself: when hook returns
// true the request is answered. It runs after the token check; rec is
// what was recorded of the request (its body already read).
func (s *Server) SetAPIHook(hook func(w http.ResponseWriter, r *http.Request, rec *Request) bool) {
	s.mu.Lock()
	s.apiHook = hook
	s.mu.Unlock()
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.flavor.ThreeLegged && r.URL.Path == s.flavor.AuthorizePath {
		s.serveAuthorize(w, r)
		return
	}
	if r.URL.Path == s.flavor.TokenPath {
		s.serveToken(w, r)
		return
	}
	s.serveAPI(w, r)
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	fault, gate := s.tokenFault, s.tokenGate
	s.mu.Unlock()
	if gate != nil {
		// A caller that gives up (a killed replica, a proxy shut down at the
		// end of a failed test) frees the handler: the server's Close waits
		// for every handler, and would otherwise hang the test binary.
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil {
		fault(w, r)
		return
	}
	if r.Method != http.MethodPost {
		s.tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	fields, err := s.readTokenRequest(r)
	if err != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	grant := fields["grant_type"]
	if s.flavor.ThreeLegged != (grant == "refresh_token" || grant == "authorization_code") {
		s.tokenError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("The authorization grant type %q is not supported", grant))
		return
	}
	id, secret := fields["client_id"], fields["client_secret"]
	if s.flavor.BasicAuth {
		user, pw, ok := r.BasicAuth()
		u, _ := url.QueryUnescape(user)
		p, _ := url.QueryUnescape(pw)
		if !ok || u != id || secret != "" {
			s.tokenError(w, http.StatusUnauthorized, "invalid_client", "send the client id and secret as Basic credentials, and client_id in the form")
			return
		}
		secret = p
	}
	if id != s.clientID || secret != s.clientSecret {
		status := s.flavor.ClientErrorStatus
		if status == 0 {
			status = http.StatusUnauthorized
		}
		s.tokenError(w, status, "invalid_client", "Client authentication failed")
		return
	}
	switch grant {
	case "authorization_code":
		s.exchangeCode(w, fields)
	case "refresh_token":
		s.redeem(w, fields["refresh_token"])
	default:
		s.issue(w, "")
	}
}

// readTokenRequest checks the body format the flavor documents.
func (s *Server) readTokenRequest(r *http.Request) (map[string]string, error) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	if s.flavor.JSONRequest {
		if mediaType != "application/json" {
			return nil, fmt.Errorf("send a JSON body with Content-Type application/json, not %q", mediaType)
		}
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, fmt.Errorf("the body is not a JSON object of strings")
		}
		return fields, nil
	}
	if mediaType != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("send a form body, not %q", mediaType)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	for k := range vals {
		fields[k] = vals.Get(k)
	}
	return fields, nil
}

// issue answers with a new access token, and a refresh token when the
// flavor has them; parent is the refresh token redeemed for it, if any.
func (s *Server) issue(w http.ResponseWriter, parent string) {
	b := make([]byte, 16)
	rand.Read(b)
	token := s.flavor.Name + "-" + hex.EncodeToString(b)
	now := s.now()
	resp := map[string]any{"access_token": token, "token_type": s.flavor.TokenType, "scope": "read"}
	var expiry time.Time
	s.mu.Lock()
	lifetime := s.flavor.ExpiresIn
	s.mu.Unlock()
	if lifetime > 0 {
		expiry = now.Add(lifetime)
		resp["expires_in"] = int(lifetime.Seconds())
		if lifetime%time.Second != 0 {
			resp["expires_in"] = lifetime.Seconds() // tests' short lifetimes
		}
		if s.flavor.AbsoluteExpires {
			resp["expires"] = expiry.Unix()
		}
	}
	if s.flavor.RefreshToken {
		rb := make([]byte, 16)
		rand.Read(rb)
		resp["refresh_token"] = "refresh-" + hex.EncodeToString(rb)
	}
	s.mu.Lock()
	if rt, ok := resp["refresh_token"].(string); ok {
		s.refreshTokens = append(s.refreshTokens, rt)
		s.refreshState[rt] = &refreshState{}
		if parent != "" && s.revokeOnUse {
			s.parentOf[token] = parent
		}
	}
	s.tokens[token] = expiry
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if s.flavor.NestedErrors {
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": desc}})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: body}
	problem := s.checkAPIRequest(r)
	req.Authorized = problem == ""
	s.mu.Lock()
	s.apiRequests = append(s.apiRequests, req)
	hook := s.apiHook
	s.mu.Unlock()
	if problem != "" {
		// As Redbooth's Doorkeeper does (RFC 6750 3).
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q, error="invalid_token", error_description=%q`, s.flavor.Name, problem))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "error_description": problem})
		return
	}
	if hook != nil && hook(w, r, &req) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"api": s.flavor.Name, "method": r.Method, "path": r.URL.Path, "authenticated": true, "body_bytes": len(body)})
}

// checkAPIRequest returns why the request is not authorized, or "".
func (s *Server) checkAPIRequest(r *http.Request) string {
	for h, want := range s.flavor.RequiredHeaders {
		if r.Header.Get(h) != want {
			return "missing or wrong " + h + " header"
		}
	}
	auths := r.Header.Values("Authorization")
	if len(auths) != 1 {
		return fmt.Sprintf("want exactly one Authorization header, got %d", len(auths))
	}
	token := auths[0]
	if !s.flavor.RawAuthorization {
		scheme, rest, ok := strings.Cut(token, " ")
		if !ok || scheme != "Bearer" {
			return `Authorization must be "Bearer <token>"`
		}
		token = rest
	}
	s.mu.Lock()
	expiry, known := s.tokens[token]
	s.mu.Unlock()
	switch {
	case !known:
		return "The access token is invalid"
	case !expiry.IsZero() && !s.now().Before(expiry):
		return "The access token expired"
	}
	s.mu.Lock()
	if parent, ok := s.parentOf[token]; ok {
		// Doorkeeper's refresh_token_revoked_on_use: the old refresh token
		// dies when the new access token is first used.
		s.refreshState[parent].revoked = true
		delete(s.parentOf, token)
	}
	s.mu.Unlock()
	return ""
}
