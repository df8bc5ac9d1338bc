package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

func TestAHeaderValueThatCannotBeSentIsATokenError(t *testing.T) {
	api := newUpstream(t, nil)
	for name, up := range map[string]Upstream{
		"a control byte in the format": {Format: "Bearer\x01{token}", Tokens: &fakeTokens{}},
		"CRLF in the token":            {Tokens: &fixedToken{&auth.Token{AccessToken: "t\r\nX-Injected: 1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			up.Name, up.Target = "api", mustURL(t, api.URL)
			p := startProxy(t, up)
			resp := do(t, mustRequest(t, "GET", p.URL+"/api/x", nil))
			body := readJSON(t, resp)
			if resp.StatusCode != 502 || body["error"] != "token_unavailable" || !strings.Contains(fmt.Sprint(body["detail"]), "cannot be sent in a header") {
				t.Errorf("status %d body %v", resp.StatusCode, body)
			}
			if strings.Contains(fmt.Sprint(body), "X-Injected") {
				t.Errorf("the answer shows the token: %v", body)
			}
		})
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// fixedToken is a TokenSource that always hands out tok.
type fixedToken struct{ tok *auth.Token }

func (f *fixedToken) Token(context.Context) (*auth.Token, error) { return f.tok, nil }
func (f *fixedToken) Invalidate(*auth.Token)                     {}
