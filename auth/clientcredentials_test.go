package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// tokenRequest is what a fake token endpoint saw.
type tokenRequest struct {
	contentType, accept string
	basicUser, basicPw  string
	hasBasic            bool
	fields              map[string]string
}

func captureEndpoint(t *testing.T, status int, answer string) (*httptest.Server, *tokenRequest) {
	t.Helper()
	var got tokenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.contentType, got.accept = r.Header.Get("Content-Type"), r.Header.Get("Accept")
		got.basicUser, got.basicPw, got.hasBasic = r.BasicAuth()
		body, _ := io.ReadAll(r.Body)
		got.fields = map[string]string{}
		if strings.HasPrefix(got.contentType, "application/json") {
			if err := json.Unmarshal(body, &got.fields); err != nil {
				t.Errorf("body is not a JSON object of strings: %v", err)
			}
		} else {
			vals, _ := url.ParseQuery(string(body))
			for k := range vals {
				got.fields[k] = vals.Get(k)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestClientCredentialsRequestShapes(t *testing.T) {
	tests := []struct {
		name       string
		cc         ClientCredentials
		wantCT     string
		wantFields map[string]string
		wantBasic  [2]string // empty: no Basic header
	}{
		{name: "redgifs: form, secret in body",
			cc:         ClientCredentials{Client: Client{ClientID: "id", ClientSecret: "s3"}},
			wantCT:     "application/x-www-form-urlencoded",
			wantFields: map[string]string{"grant_type": "client_credentials", "client_id": "id", "client_secret": "s3"}},
		{name: "producthunt: json body",
			cc:         ClientCredentials{Client: Client{ClientID: "id", ClientSecret: "s3", BodyFormat: JSONBody}},
			wantCT:     "application/json",
			wantFields: map[string]string{"grant_type": "client_credentials", "client_id": "id", "client_secret": "s3"}},
		{name: "generic guide: basic auth with client_id also in the form",
			cc:         ClientCredentials{Client: Client{ClientID: "id", ClientSecret: "s3", AuthMethod: ClientSecretBasic}},
			wantCT:     "application/x-www-form-urlencoded",
			wantFields: map[string]string{"grant_type": "client_credentials", "client_id": "id"},
			wantBasic:  [2]string{"id", "s3"}},
		{name: "basic auth form-encodes id and secret (RFC 6749 2.3.1)",
			cc:         ClientCredentials{Client: Client{ClientID: "a:b", ClientSecret: "p w", AuthMethod: ClientSecretBasic}},
			wantCT:     "application/x-www-form-urlencoded",
			wantFields: map[string]string{"grant_type": "client_credentials", "client_id": "a:b"},
			wantBasic:  [2]string{"a%3Ab", "p+w"}},
		{name: "scopes and extra params",
			cc: ClientCredentials{Client: Client{ClientID: "id", ClientSecret: "s3", Scopes: []string{"read", "write"},
				Params: map[string]string{"audience": "https://api", "grant_type": "password"}}},
			wantCT: "application/x-www-form-urlencoded",
			wantFields: map[string]string{"grant_type": "client_credentials", "client_id": "id", "client_secret": "s3",
				"scope": "read write", "audience": "https://api"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := captureEndpoint(t, 200, `{"access_token":"tok","token_type":"bearer","expires_in":60}`)
			cc := tt.cc
			cc.TokenURL = srv.URL
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "tok" {
				t.Errorf("access token %q", tok.AccessToken)
			}
			if got.contentType != tt.wantCT || got.accept != "application/json" {
				t.Errorf("content-type %q accept %q", got.contentType, got.accept)
			}
			if len(got.fields) != len(tt.wantFields) {
				t.Errorf("fields %v, want %v", got.fields, tt.wantFields)
			}
			for k, v := range tt.wantFields {
				if got.fields[k] != v {
					t.Errorf("field %s = %q, want %q", k, got.fields[k], v)
				}
			}
			if got.hasBasic != (tt.wantBasic[0] != "") || got.basicUser != tt.wantBasic[0] || got.basicPw != tt.wantBasic[1] {
				t.Errorf("basic auth %v %q %q, want %q", got.hasBasic, got.basicUser, got.basicPw, tt.wantBasic)
			}
		})
	}
}

func TestClientCredentialsRedactsEchoedSecret(t *testing.T) {
	srv, _ := captureEndpoint(t, 400, `{"error":"invalid_request","error_description":"bad secret s3cr3t-value"}`)
	cc := ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s3cr3t-value"}}
	_, err := cc.Token(context.Background())
	var re *RetrieveError
	if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != "invalid_request" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-value") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error text %q", err)
	}
}

func TestClientCredentialsDoesNotFollowRedirects(t *testing.T) {
	var leaked bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked = true }))
	defer elsewhere.Close()
	for _, code := range []int{301, 302, 307, 308} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/token", code)
		}))
		cc := ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s"}}
		_, err := cc.Token(context.Background())
		srv.Close()
		var re *RetrieveError
		if !errors.As(err, &re) || re.StatusCode != code || !strings.Contains(err.Error(), "redirect not followed") {
			t.Errorf("%d: got %v", code, err)
		}
	}
	if leaked {
		t.Error("a redirect was followed: the credentials went to another host")
	}
}

func TestClientCredentialsReadsRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := (&ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s"}}).Token(context.Background())
	var re *RetrieveError
	if !errors.As(err, &re) || re.RetryAfter != 30*time.Second || !strings.Contains(err.Error(), "retry after 30s") {
		t.Fatalf("got %#v", err)
	}
}

func TestClientCredentialsCapsBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"`+strings.Repeat("a", maxResponseBytes)+`"}`)
	}))
	defer srv.Close()
	_, err := (&ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s"}}).Token(context.Background())
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("got %v", err)
	}
}

// An endpoint that sends its headers at once and then drips its body past
// the request's deadline has timed out, like one that sends nothing: the
// proxy answers 504, not 502, and says "timed out".
func TestClientCredentialsBodyThatStallsPastTheDeadlineIsATimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := (&ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s"}}).Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want an error that is context.DeadlineExceeded", err)
	}
}

// A token endpoint that takes its time answers with a lifetime counted
// from when it issued the token, which may be as early as when the
// request arrived: counted from the answer, the proxy would believe the
// token the endpoint's delay longer than its issuer, and send it expired
// (issue 21 item 1, a slow endpoint with 3 s tokens). The lifetime is
// counted from when the request was sent: never later than the issuer.
func TestTokenLifetimeCountsFromTheRequestNotTheAnswer(t *testing.T) {
	clk := newFakeClock()
	sent := clk.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.Advance(1500 * time.Millisecond) // the endpoint's delay, on the proxy's clock
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","token_type":"Bearer","expires_in":3}`)
	}))
	defer srv.Close()
	tok, err := (&ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s", Now: clk.Now}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := sent.Add(3 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %v after the request was sent, want 3s", tok.Expiry.Sub(sent))
	}
	if !tok.Obtained.Equal(sent) {
		t.Errorf("obtained %v after the request was sent, want when it was sent (the lifetime's start)", tok.Obtained.Sub(sent))
	}
}

// RFC 6749 7.1: a client must not use a token whose type it does not
// understand. A DPoP-bound (RFC 9449), MAC or N_A (RFC 8693) token was
// sent as "Authorization: Bearer ..." (issue 21 item 5). A type other
// than the one the upstream is configured for (Bearer, in any case, or
// none said) is an unusable response that names the type; a configured
// type is taken.
func TestTokenTypeMustBeTheConfiguredOne(t *testing.T) {
	for _, tt := range []struct {
		sent, configured string
		bad              bool
	}{
		{`"Bearer"`, "", false},
		{`"bearer"`, "", false},
		{`"BEARER"`, "Bearer", false},
		{`null`, "", false}, // none said: RFC 6749's common case
		{`"DPoP"`, "", true},
		{`"MAC"`, "", true},
		{`"N_A"`, "", true},
		{`"N_A"`, "N_A", false},
		{`"n_a"`, "N_A", false},
		{`"Bearer"`, "N_A", true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-value","token_type":`+tt.sent+`,"expires_in":60}`)
		}))
		_, err := (&ClientCredentials{Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s", TokenType: tt.configured}}).Token(context.Background())
		srv.Close()
		switch {
		case tt.bad && (!errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "token_type "+tt.sent)):
			t.Errorf("token_type %s, configured %q: got %v, want an unusable response naming the type", tt.sent, tt.configured, err)
		case !tt.bad && err != nil:
			t.Errorf("token_type %s, configured %q: %v", tt.sent, tt.configured, err)
		case err != nil && strings.Contains(err.Error(), "tok-value"):
			t.Errorf("the error holds the token: %v", err)
		}
	}
}

// A key in the token URL's query (?api_key=...) is a credential too: a
// token endpoint that echoes it in its error_description must not put it
// in the error, which reaches logs, /status and the client's body.
func TestClientCredentialsRedactsTheTokenURLsQuery(t *testing.T) {
	srv, _ := captureEndpoint(t, 400, `{"error":"invalid_request","error_description":"unknown api_key k3y-in-the-url-0123"}`)
	cc := ClientCredentials{Client: Client{TokenURL: srv.URL + "/token?api_key=k3y-in-the-url-0123", ClientID: "id", ClientSecret: "s3cr3t-value"}}
	_, err := cc.Token(context.Background())
	if err == nil || strings.Contains(err.Error(), "k3y-in-the-url-0123") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error text %q", err)
	}
}
