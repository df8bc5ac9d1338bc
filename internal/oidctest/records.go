package oidctest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Records is what the server saw, in arrival order.
type Records struct {
	// TokenRequests holds every POST to the token endpoint, also those
	// the provider refused and those answered by FailNext.
	TokenRequests []TokenRequest `json:"token_requests"`
	// AssertionJTIs holds every client assertion whose signature and
	// claims the provider verified, before its replay check: a reused jti
	// appears twice here, and the second request fails.
	AssertionJTIs []AssertionJTI `json:"assertion_jtis"`
	// Grants holds the jwt-bearer and token-exchange requests that
	// reached their handlers (after client authentication).
	Grants []GrantRequest `json:"grants"`
	// Interactions holds the login and consent steps of authorization
	// requests.
	Interactions []Interaction `json:"interactions"`
}

// TokenRequest is one token request.
type TokenRequest struct {
	// Params is the form as sent, client authentication included.
	Params    Form   `json:"params"`
	GrantType string `json:"grant_type"`
	// Authorization is the scheme of the Authorization header ("Basic"),
	// or empty.
	Authorization string `json:"authorization"`
	// ClientAssertion is the client_assertion, decoded but not verified.
	ClientAssertion *JWT `json:"client_assertion"`
	// ClientCertSubject is the subject of the TLS client certificate
	// (Node's form: one "TYPE=value" a line), or empty.
	ClientCertSubject string `json:"client_cert_subject"`
	// ClientCertSerial is its serial number in upper-case hex, as
	// fmt.Sprintf("%X", cert.SerialNumber) writes it.
	ClientCertSerial     string `json:"client_cert_serial"`
	ClientCertAuthorized *bool  `json:"client_cert_authorized"`
	// Status is the HTTP status answered; Error the OAuth error code.
	Status int    `json:"status"`
	Error  string `json:"error"`
	// ClientID and AuthMethod are the client the provider authenticated
	// and its registered method; empty when it authenticated none.
	ClientID   string `json:"client_id"`
	AuthMethod string `json:"auth_method"`
	// DPoP is the request's DPoP proof, decoded but not verified (the
	// provider verifies it); TokenType the token_type answered.
	DPoP      *JWT   `json:"dpop"`
	TokenType string `json:"token_type"`
}

// JWT is a decoded, unverified JWT.
type JWT struct {
	Header    map[string]any `json:"header"`
	Claims    map[string]any `json:"claims"`
	Malformed bool           `json:"malformed"`
}

// AssertionJTI is one verified client assertion.
type AssertionJTI struct {
	ClientID string `json:"client_id"`
	JTI      string `json:"jti"`
	Alg      string `json:"alg"`
}

// GrantRequest is one request to a custom grant handler.
type GrantRequest struct {
	GrantType  string `json:"grant_type"`
	ClientID   string `json:"client_id"`
	AuthMethod string `json:"auth_method"`
	Params     Form   `json:"params"`
}

// Interaction is one login or consent step.
type Interaction struct {
	Prompt   string `json:"prompt"`
	ClientID string `json:"client_id"`
}

// Form is a decoded application/x-www-form-urlencoded body. Node writes a
// repeated key as an array and a single one as a string.
type Form url.Values

// UnmarshalJSON reads Node's querystring.parse output.
func (f *Form) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = Form{}
	for k, v := range raw {
		var one string
		if json.Unmarshal(v, &one) == nil {
			(*f)[k] = []string{one}
			continue
		}
		var many []string
		if err := json.Unmarshal(v, &many); err != nil {
			return fmt.Errorf("form key %q: %w", k, err)
		}
		(*f)[k] = many
	}
	return nil
}

// Get is the first value of key, or "".
func (f Form) Get(key string) string { return url.Values(f).Get(key) }

// Has says whether key was sent.
func (f Form) Has(key string) bool { return url.Values(f).Has(key) }

// Records fetches what the server has seen so far.
func (s *Server) Records() Records {
	s.t.Helper()
	resp, err := s.HTTPClient().Get(s.Issuer + "/__test/records")
	if err != nil {
		s.t.Fatalf("oidctest records: %v", err)
	}
	defer resp.Body.Close()
	var r Records
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		s.t.Fatalf("oidctest records: %v", err)
	}
	return r
}

// FailNext makes the next count token requests answer status (a 5xx, for
// retry tests) before the provider sees them; they are still recorded.
func (s *Server) FailNext(status, count int) {
	s.t.Helper()
	s.post(fmt.Sprintf("/__test/fail-next?status=%d&count=%d", status, count))
}

// Reset forgets the records.
func (s *Server) Reset() {
	s.t.Helper()
	s.post("/__test/reset")
}

func (s *Server) post(path string) {
	s.t.Helper()
	resp, err := s.HTTPClient().Post(s.Issuer+path, "text/plain", nil)
	if err != nil {
		s.t.Fatalf("oidctest %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		s.t.Fatalf("oidctest %s: status %d", path, resp.StatusCode)
	}
}
