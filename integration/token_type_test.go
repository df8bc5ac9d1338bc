package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// A token endpoint that answers with a token of another type than Bearer
// (DPoP-bound, MAC, RFC 8693's N_A) had its token sent upstream as
// "Authorization: Bearer ...", and /readyz said ready (issue 21 item 5).
// Now the client gets a 502 (token_unavailable, an unusable token
// response, the access log's token_endpoint_bad_response) that names the
// type, the API is sent nothing, /readyz says not ready and why, and the
// failure is logged once for the two requests; an upstream configured
// for the type takes it.
func TestATokenOfAnotherTypeIsNotSentAsBearer(t *testing.T) {
	for _, typ := range []string{"DPoP", "MAC", "N_A"} {
		t.Run(typ, func(t *testing.T) {
			f := fakeapi.RedGIFs()
			f.TokenType = typ
			e := start(t, f, setup{})
			for range 2 {
				status, body, _ := e.do("GET", f.APIPath, nil)
				var got struct{ Error, Detail string }
				json.Unmarshal(body, &got)
				if status != 502 || got.Error != "token_unavailable" || !strings.Contains(got.Detail, `unusable token response: status 200 with token_type "`+typ+`"`) {
					t.Errorf("status %d %s, want 502 token_unavailable naming the type %s", status, body, typ)
				}
			}
			if n := len(e.api.APIRequests()); n != 0 {
				t.Errorf("the API was sent %d requests with a %s token", n, typ)
			}
			if status, body := e.adminGet("/readyz"); status != 503 || !strings.Contains(body, "token_endpoint_bad_response") {
				t.Errorf("/readyz: %d %s", status, body)
			}
			if n := strings.Count(e.logs.String(), `token fetch failed`); n != 1 {
				t.Errorf("the failure was logged %d times for two requests, want once (the backoff holds the second):\n%s", n, e.logs)
			}
		})
	}
	t.Run("configured", func(t *testing.T) {
		f := fakeapi.Generic() // takes the raw token: inject.format "{token}"
		f.TokenType = "N_A"
		e := start(t, f, setup{tokenYAML: "      token_type: N_A\n"})
		if status, body, _ := e.do("GET", f.APIPath, nil); status != 200 {
			t.Errorf("status %d %s", status, body)
		}
	})
}
