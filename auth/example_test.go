package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/store"
	"golang.org/x/oauth2"
)

// A client-credentials API (RFC 6749 4.4): NewSource gives a source that
// fetches one token and hands it out until it is due for refresh.
func ExampleNewSource_clientCredentials() {
	requests := 0
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"a1","token_type":"bearer","expires_in":3600}`)
	}))
	defer endpoint.Close()

	src, err := auth.NewSource(context.Background(), auth.Settings{
		Name:   "redgifs",
		Client: auth.Client{TokenURL: endpoint.URL, ClientID: "my-client", ClientSecret: "my-secret"},
	}, auth.Options{})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	for range 3 {
		tok, _ := src.Token(context.Background())
		fmt.Println(tok.Type(), tok.AccessToken)
	}
	fmt.Println("token requests:", requests)
	// Output:
	// Bearer a1
	// Bearer a1
	// Bearer a1
	// token requests: 1
}

// An API that acts for a user and rotates its refresh token on every use
// (RFC 6749 6, Redbooth): the source redeems the stored refresh token and
// saves the new one in the Store before handing out the access token.
func ExampleNewSource_refreshToken() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		fmt.Println("redeemed:", r.Form.Get("refresh_token"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"a2","token_type":"bearer","expires_in":7200,"refresh_token":"r2"}`)
	}))
	defer endpoint.Close()

	tokens := &store.Memory{} // store.File keeps them across restarts
	src, err := auth.NewSource(context.Background(), auth.Settings{
		Name:         "redbooth",
		Grant:        auth.GrantRefreshToken,
		Client:       auth.Client{TokenURL: endpoint.URL, ClientID: "my-client", ClientSecret: "my-secret"},
		RefreshToken: "r1", // from a login; a stored one wins
	}, auth.Options{Store: tokens})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	tok, _ := src.Token(context.Background())
	rec, _ := tokens.Load(context.Background(), "redbooth")
	fmt.Println("access token:", tok.AccessToken)
	fmt.Println("stored refresh token:", rec.RefreshToken)
	// Output:
	// redeemed: r1
	// access token: a2
	// stored refresh token: r2
}

// OAuth2 lets Go programs embed the engine under x/oauth2's Transport.
func ExampleOAuth2() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"a3","token_type":"bearer","expires_in":3600}`)
	}))
	defer endpoint.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("the API got:", r.Header.Get("Authorization"))
	}))
	defer api.Close()

	src, _ := auth.NewSource(context.Background(), auth.Settings{
		Name:   "api",
		Client: auth.Client{TokenURL: endpoint.URL, ClientID: "my-client", ClientSecret: "my-secret"},
	}, auth.Options{})
	defer src.Close()
	client := oauth2.NewClient(context.Background(), auth.OAuth2(context.Background(), src))
	resp, err := client.Get(api.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	// Output:
	// the API got: Bearer a3
}
