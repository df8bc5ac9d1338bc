package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExchangeCodeRequestShapes(t *testing.T) {
	for _, tt := range []struct {
		name       string
		client     Client
		wantCT     string
		wantFields map[string]string
		wantBasic  [2]string
	}{
		{name: "form, secret in the body, params",
			client: Client{ClientID: "id", ClientSecret: "s3cret", Params: map[string]string{"audience": "aud", "redirect_uri": "ignored"}},
			wantCT: "application/x-www-form-urlencoded",
			wantFields: map[string]string{"grant_type": "authorization_code", "code": "c0de", "code_verifier": "v3rifier",
				"redirect_uri": "http://127.0.0.1:8085/callback", "client_id": "id", "client_secret": "s3cret", "audience": "aud"}},
		{name: "json body",
			client: Client{ClientID: "id", ClientSecret: "s3cret", BodyFormat: JSONBody},
			wantCT: "application/json",
			wantFields: map[string]string{"grant_type": "authorization_code", "code": "c0de", "code_verifier": "v3rifier",
				"redirect_uri": "http://127.0.0.1:8085/callback", "client_id": "id", "client_secret": "s3cret"}},
		{name: "basic",
			client: Client{ClientID: "id", ClientSecret: "s3cret", AuthMethod: ClientSecretBasic},
			wantCT: "application/x-www-form-urlencoded",
			wantFields: map[string]string{"grant_type": "authorization_code", "code": "c0de", "code_verifier": "v3rifier",
				"redirect_uri": "http://127.0.0.1:8085/callback", "client_id": "id"},
			wantBasic: [2]string{"id", "s3cret"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := captureEndpoint(t, 200, `{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_in":60}`)
			c := tt.client
			c.TokenURL = srv.URL
			tok, err := c.ExchangeCode(context.Background(), "c0de", "v3rifier", "http://127.0.0.1:8085/callback")
			if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" {
				t.Fatalf("got %v, %v", tok, err)
			}
			if got.contentType != tt.wantCT || len(got.fields) != len(tt.wantFields) {
				t.Errorf("content-type %q, fields %v", got.contentType, got.fields)
			}
			for k, v := range tt.wantFields {
				if got.fields[k] != v {
					t.Errorf("field %s = %q, want %q", k, got.fields[k], v)
				}
			}
			if got.hasBasic != (tt.wantBasic[0] != "") || got.basicUser != tt.wantBasic[0] || got.basicPw != tt.wantBasic[1] {
				t.Errorf("basic auth %v %q %q", got.hasBasic, got.basicUser, got.basicPw)
			}
		})
	}
}

func TestExchangeCodeRefusesRedirectsAndRedactsTheCode(t *testing.T) {
	var leaked bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked = true }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s3cret"}
	_, err := c.ExchangeCode(context.Background(), "c0de-c0de", "v3rifier-v3rifier", "http://127.0.0.1:8085/callback")
	var re *RetrieveError
	if !errors.As(err, &re) || re.StatusCode != 307 || leaked {
		t.Errorf("got %v (followed: %v)", err, leaked)
	}
	echo := echoEndpoint(t, 400)
	c.TokenURL = echo.URL
	_, err = c.ExchangeCode(context.Background(), "c0de-c0de", "v3rifier-v3rifier", "http://127.0.0.1:8085/callback")
	if err == nil || strings.Contains(err.Error(), "c0de-c0de") || strings.Contains(err.Error(), "v3rifier-v3rifier") {
		t.Errorf("got %v", err)
	}
}

func TestRefreshGrantSendsParams(t *testing.T) {
	srv, got := captureEndpoint(t, 200, `{"access_token":"a","refresh_token":"r2","token_type":"bearer","expires_in":60}`)
	g := &RefreshGrant{Name: "x", Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s3cret",
		Params: map[string]string{"audience": "aud", "refresh_token": "not this one"}},
		InitialRefreshToken: "r1", Store: &memStore{}}
	g.Open(context.Background())
	if _, err := g.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.fields["audience"] != "aud" || got.fields["refresh_token"] != "r1" || got.fields["grant_type"] != "refresh_token" {
		t.Errorf("fields %v", got.fields)
	}
}
