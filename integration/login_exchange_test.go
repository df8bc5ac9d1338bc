package integration

// `authproxy login` sends the client secret and the code to the token
// endpoint: the same rules as every token request apply.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// tokenFields records the fields of every token request the fake API
// gets, form or JSON, and passes the request on.
type tokenFields struct {
	mu   sync.Mutex
	seen []map[string]string
}

func (tf *tokenFields) wrap(tokenPath string) func(http.Handler) http.Handler {
	return func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tokenPath {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				fields := map[string]string{}
				if json.Unmarshal(body, &fields) != nil {
					vals, _ := url.ParseQuery(string(body))
					for k := range vals {
						fields[k] = vals.Get(k)
					}
				}
				tf.mu.Lock()
				tf.seen = append(tf.seen, fields)
				tf.mu.Unlock()
			}
			api.ServeHTTP(w, r)
		})
	}
}

func (tf *tokenFields) all() []map[string]string {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return append([]map[string]string(nil), tf.seen...)
}

func TestLoginRefusesATokenEndpointRedirect(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, `{"access_token":"stolen","refresh_token":"stolen","token_type":"bearer"}`)
	}))
	defer elsewhere.Close()
	f := fakeapi.Redbooth()
	e := start(t, f, setup{wrapAPI: func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == f.TokenPath {
				http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
				return
			}
			api.ServeHTTP(w, r)
		})
	}})
	code, out := runLogin(t, e, browseAndAllow)
	if code == 0 || !strings.Contains(out, "redirect not followed") {
		t.Errorf("exit %d, want a failure that says the redirect was not followed:\n%s", code, out)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the code and client secret were sent to the redirect's target (%d requests)", n)
	}
}

func TestLoginWithAJSONTokenEndpointAndParams(t *testing.T) {
	f := fakeapi.Redbooth()
	f.JSONRequest = true // the token endpoint takes only JSON bodies
	seen := &tokenFields{}
	e := start(t, f, setup{wrapAPI: seen.wrap(f.TokenPath), tokenYAML: "      params: {audience: https://api.example/}\n"})
	if code, out := runLogin(t, e, browseAndAllow); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// The login's access token is used, then a refresh once it expires.
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	e.clock.Advance(f.ExpiresIn)
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("after expiry: %d %s", status, body)
	}
	got := seen.all()
	if len(got) != 2 || got[0]["grant_type"] != "authorization_code" || got[1]["grant_type"] != "refresh_token" {
		t.Fatalf("%d token requests, want the code exchange then a refresh", len(got))
	}
	for _, fields := range got {
		if fields["audience"] != "https://api.example/" {
			t.Errorf("%s request with audience %q, want the configured one", fields["grant_type"], fields["audience"])
		}
	}
}

func TestRefreshTokenGrantSendsTheConfiguredParams(t *testing.T) {
	f := fakeapi.Redbooth()
	seen := &tokenFields{}
	e := start(t, f, setup{seedRefresh: true, wrapAPI: seen.wrap(f.TokenPath), tokenYAML: "      params: {audience: aud-1, resource: res-1}\n"})
	if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	got := seen.all()
	if len(got) != 1 || got[0]["grant_type"] != "refresh_token" || got[0]["audience"] != "aud-1" || got[0]["resource"] != "res-1" {
		t.Errorf("%d token requests, the first %s with audience %q and resource %q; want a refresh with aud-1 and res-1",
			len(got), got[0]["grant_type"], got[0]["audience"], got[0]["resource"])
	}
}
