package fakeapi

// Stats is what a fake API has seen, as counts only: never a token or the
// secret, so that `authproxy fakeapis` can serve it to anyone who asks
// (GET /_fake/stats) and the Docker tests can read it from the host.
type Stats struct {
	// TokenRequests counts every request to the token endpoint.
	TokenRequests int `json:"token_requests"`
	// APIRequests counts requests to protected paths; APIRejected those
	// answered 401.
	APIRequests int `json:"api_requests"`
	APIRejected int `json:"api_rejected"`
	// Three-legged flavors only.
	// Logins counts authorization codes exchanged for tokens: each is a
	// person authorizing the app again.
	Logins int `json:"logins,omitempty"`
	// Redemptions counts refresh-token requests, RedeemedTwice the refresh
	// tokens that were sent more than once (the proxy promises 0), and
	// InvalidGrants the redemptions refused (a dead or unknown refresh
	// token: the chain broke).
	Redemptions   int `json:"refresh_redemptions,omitempty"`
	RedeemedTwice int `json:"refresh_tokens_redeemed_twice,omitempty"`
	InvalidGrants int `json:"invalid_grants,omitempty"`
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{TokenRequests: s.tokenRequests, APIRequests: len(s.apiRequests),
		Logins: s.exchanged, InvalidGrants: s.invalidGrant}
	for _, r := range s.apiRequests {
		if !r.Authorized {
			st.APIRejected++
		}
	}
	for _, n := range s.redemptions {
		st.Redemptions += n
		if n > 1 {
			st.RedeemedTwice++
		}
	}
	return st
}
