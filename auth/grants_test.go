package auth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// The grants send what RFC 7523 2.1, RFC 8693 2.1 and RFC 6749 4.3 ask,
// with the scopes, audiences and resources.
func TestGrantRequestShapes(t *testing.T) {
	ep := newRecordingEndpoint(t)
	dir := t.TempDir()
	grantJWT, subject := filepath.Join(dir, "grant.jwt"), filepath.Join(dir, "subject")
	writeFile(t, grantJWT, []byte("h.p.s\n"))
	writeFile(t, subject, []byte("the-subject"))
	key := testKeys()["rsa"]
	keyFile := writeKeyFile(t, pkcs8(t, key))
	base := Client{TokenURL: ep.URL, ClientID: "id", ClientSecret: "s3cret", Scopes: []string{"a", "b"},
		Audience: []string{"https://aud1", "https://aud2"}, Resource: []string{"https://res"}, Params: map[string]string{"extra": "x", "grant_type": "ignored"}}
	for _, tc := range []struct {
		name string
		s    Settings
		want url.Values
	}{
		{"jwt-bearer from a file", Settings{Grant: GrantJWTBearer, AssertionFile: grantJWT},
			url.Values{"grant_type": {string(GrantJWTBearer)}, "assertion": {"h.p.s"}}},
		{"token exchange", Settings{Grant: GrantTokenExchange, SubjectTokenFile: subject, RequestedTokenType: "urn:ietf:params:oauth:token-type:access_token"},
			url.Values{"grant_type": {string(GrantTokenExchange)}, "subject_token": {"the-subject"}, "subject_token_type": {TokenTypeJWT},
				"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}},
		{"password", Settings{Grant: GrantPassword, Username: "alice", Password: "pa55word"},
			url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pa55word"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			s.Client = base
			before := len(ep.requests())
			if _, err := newTestSource(t, s, Options{}).Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := ep.requests()[before].form
			want := tc.want
			want["client_id"], want["client_secret"], want["scope"] = []string{"id"}, []string{"s3cret"}, []string{"a b"}
			want["audience"], want["resource"], want["extra"] = base.Audience, base.Resource, []string{"x"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("form\n got  %v\n want %v", got, want)
			}
		})
	}
	// Signed with the private key: iss = sub = client_id, aud the token URL.
	src := newTestSource(t, Settings{Grant: GrantJWTBearer, Client: Client{TokenURL: ep.URL, ClientID: "id", AuthMethod: AuthNone}, PrivateKeyFile: keyFile}, Options{})
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := ep.requests()
	if _, c := verifyAssertion(t, reqs[len(reqs)-1].form.Get("assertion"), RS256, key.Public()); c["iss"] != "id" || c["sub"] != "id" || c["aud"] != ep.URL {
		t.Errorf("grant assertion claims %v", c)
	}
	// JSON: a repeated field is a list.
	j := newTestSource(t, Settings{Name: "j", Client: Client{TokenURL: ep.URL, ClientID: "id", ClientSecret: "s", BodyFormat: JSONBody,
		Audience: []string{"https://aud1", "https://aud2"}}}, Options{})
	if _, err := j.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs = ep.requests()
	if got := fmt.Sprint(reqs[len(reqs)-1].json["audience"]); got != "[https://aud1 https://aud2]" {
		t.Errorf("json audience %s", got)
	}
}

// A token file that cannot be read is the config's fault: nothing is
// sent, and the error names the file (never a content) and is ErrTokenFile.
func TestUnreadableTokenFileSendsNothing(t *testing.T) {
	ep := newRecordingEndpoint(t)
	missing := filepath.Join(t.TempDir(), "not-yet")
	for name, s := range map[string]Settings{
		"client assertion": {Client: Client{AuthMethod: PrivateKeyJWT}, ClientAssertionFile: missing},
		"grant assertion":  {Grant: GrantJWTBearer, AssertionFile: missing},
		"subject token":    {Grant: GrantTokenExchange, SubjectTokenFile: missing},
	} {
		s.Client.TokenURL, s.Client.ClientID = ep.URL, "id"
		_, err := newTestSource(t, s, Options{}).Token(context.Background())
		if !errors.Is(err, ErrTokenFile) || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(ep.requests()); n != 0 {
		t.Errorf("%d token requests sent", n)
	}
}
