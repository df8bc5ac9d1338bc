package fakeapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
)

type authCode struct {
	redirectURI, challenge string
}

type refreshState struct {
	revoked bool
}

// SetRevokeOnUse chooses when a redeemed refresh token stops working:
// false (the default), at once; true, when the access token issued for it
// is first used, as Doorkeeper (Redbooth's OAuth server) does with
// refresh_token_revoked_on_use. Only the second makes a crash between the
// server's rotation and the client saving the new token recoverable.
func (s *Server) SetRevokeOnUse(on bool) {
	s.mu.Lock()
	s.revokeOnUse = on
	s.mu.Unlock()
}

// SetDenyConsent makes the authorize endpoint answer as if the user
// clicked Deny.
func (s *Server) SetDenyConsent(deny bool) {
	s.mu.Lock()
	s.denyConsent = deny
	s.mu.Unlock()
}

// OnRefresh calls f with each refresh token redeemed, before answering.
func (s *Server) OnRefresh(f func(refreshToken string)) {
	s.mu.Lock()
	s.onRefresh = f
	s.mu.Unlock()
}

// SeedRefreshToken issues a valid refresh token, as if a login had
// happened earlier.
func (s *Server) SeedRefreshToken() string {
	rt := "refresh-" + randomHex()
	s.AcceptRefreshToken(rt)
	return rt
}

// AcceptRefreshToken makes rt a valid refresh token, as if issued by a
// login before the server started: the compose stack's fake Redbooth and
// its proxy config are given the same one.
func (s *Server) AcceptRefreshToken(rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshState[rt] = &refreshState{}
	s.refreshTokens = append(s.refreshTokens, rt)
}

// RevokeRefreshTokens kills every refresh token, as when the user revokes
// the app's access.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.refreshState {
		st.revoked = true
	}
}

// Redemptions returns how often each refresh token was redeemed,
// successfully or not.
func (s *Server) Redemptions() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.redemptions))
	for k, v := range s.redemptions {
		out[k] = v
	}
	return out
}

// LatestRefreshToken returns the refresh token issued last.
func (s *Server) LatestRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refreshTokens) == 0 {
		return ""
	}
	return s.refreshTokens[len(s.refreshTokens)-1]
}

// serveAuthorize is the consent screen, with the user's answer already
// given: it redirects back with a code, or with error=access_denied.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" || q.Get("client_id") != s.clientID {
		http.Error(w, "unknown client or bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	s.mu.Lock()
	deny := s.denyConsent
	if q.Get("response_type") != "code" {
		back.Set("error", "unsupported_response_type")
		back.Set("error_description", "The authorization server does not support obtaining an authorization code using this method.")
	} else if deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The resource owner or authorization server denied the request.")
	} else {
		code := "code-" + randomHex()
		challenge := ""
		if q.Get("code_challenge_method") == "S256" {
			challenge = q.Get("code_challenge")
		}
		s.codes[code] = authCode{redirectURI: q.Get("redirect_uri"), challenge: challenge}
		back.Set("code", code)
	}
	s.mu.Unlock()
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) exchangeCode(w http.ResponseWriter, fields map[string]string) {
	s.mu.Lock()
	c, ok := s.codes[fields["code"]]
	delete(s.codes, fields["code"]) // codes are single-use
	s.mu.Unlock()
	switch {
	case !ok:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "The provided authorization grant is invalid, expired or revoked.")
	case c.redirectURI != fields["redirect_uri"]:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "The redirect_uri does not match the one of the authorization request.")
	case c.challenge != "" && pkceChallenge(fields["code_verifier"]) != c.challenge:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "The code_verifier does not match the code_challenge.")
	default:
		s.mu.Lock()
		s.exchanged++
		s.mu.Unlock()
		s.issue(w, "")
	}
}

func (s *Server) redeem(w http.ResponseWriter, rt string) {
	s.mu.Lock()
	s.redemptions[rt]++
	st, ok := s.refreshState[rt]
	valid := ok && !st.revoked
	if valid && !s.revokeOnUse {
		st.revoked = true
	}
	if !valid {
		s.invalidGrant++
	}
	hook := s.onRefresh
	s.mu.Unlock()
	if hook != nil {
		hook(rt)
	}
	if !valid {
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.")
		return
	}
	s.issue(w, rt)
}

func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
