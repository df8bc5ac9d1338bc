package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseTokenResponse(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const ctJSON = "application/json; charset=utf-8"
	tests := []struct {
		name        string
		status      int
		ctype, body string
		wantType    string
		wantExpiry  time.Time
		wantRefresh string
		wantScope   string
	}{
		{name: "redgifs number expires_in", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","token_type":"Bearer","expires_in":86400,"scope":"read"}`,
			wantType: "Bearer", wantExpiry: now.Add(86400 * time.Second), wantScope: "read"},
		{name: "string expires_in", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","token_type":"bearer","expires_in":"3600"}`,
			wantType: "Bearer", wantExpiry: now.Add(time.Hour)},
		{name: "producthunt no expiry", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","token_type":"bearer","scope":"public"}`,
			wantType: "Bearer", wantScope: "public"},
		{name: "teen-quotes absolute expires and expires_in: relative wins", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","token_type":"bearer","expires":1401437772,"expires_in":604800,"refresh_token":"r"}`,
			wantType: "Bearer", wantExpiry: now.Add(604800 * time.Second), wantRefresh: "r"},
		{name: "absolute expires only", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","expires":1700000600}`,
			wantType: "Bearer", wantExpiry: time.Unix(1700000600, 0)},
		{name: "absolute expires in the past is ignored", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","expires":1401437772}`,
			wantType: "Bearer"},
		{name: "no content type, JSON body", status: 200,
			body:     `{"access_token":"a","token_type":"MAC"}`,
			wantType: "MAC"},
		{name: "form response", status: 200, ctype: "application/x-www-form-urlencoded",
			body:     "access_token=a&token_type=bearer&expires_in=60&scope=x",
			wantType: "Bearer", wantExpiry: now.Add(time.Minute), wantScope: "x"},
		{name: "scope as list", status: 200, ctype: ctJSON,
			body:     `{"access_token":"a","scope":["a","b"],"expires_in":null}`,
			wantType: "Bearer", wantScope: "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := parseTokenResponse(tt.status, tt.ctype, []byte(tt.body), now)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if tok.AccessToken != "a" || tok.Type() != tt.wantType || !tok.Expiry.Equal(tt.wantExpiry) ||
				tok.RefreshToken != tt.wantRefresh || tok.Scope != tt.wantScope || !tok.Obtained.Equal(now) {
				t.Errorf("got access=%q type=%q expiry=%v refresh=%q scope=%q",
					tok.AccessToken, tok.Type(), tok.Expiry, tok.RefreshToken, tok.Scope)
			}
		})
	}
}

func TestParseTokenResponseErrors(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		ctype, body  string
		wantRetrieve *RetrieveError // nil: want ErrBadResponse
		wantText     string
	}{
		{name: "rfc 6749 error", status: 401, ctype: "application/json",
			body:         `{"error":"invalid_client","error_description":"Client authentication failed"}`,
			wantRetrieve: &RetrieveError{StatusCode: 401, ErrorCode: "invalid_client", ErrorDescription: "Client authentication failed"},
			wantText:     "token endpoint answered 401 invalid_client: Client authentication failed"},
		{name: "error with 200", status: 200, ctype: "application/json",
			body:         `{"error":"invalid_request","error_description":"The user credentials were incorrect."}`,
			wantRetrieve: &RetrieveError{StatusCode: 200, ErrorCode: "invalid_request", ErrorDescription: "The user credentials were incorrect."}},
		{name: "500 html", status: 500, ctype: "text/html", body: "<html>oops</html>",
			wantRetrieve: &RetrieveError{StatusCode: 500, ErrorDescription: "response body is text/html"}},
		{name: "403 empty", status: 403, wantRetrieve: &RetrieveError{StatusCode: 403}},
		{name: "html with 200", status: 200, ctype: "text/html", body: "<html>login</html>", wantText: "text/html body, not JSON"},
		{name: "truncated json", status: 200, ctype: "application/json", body: `{"access_token":"a`, wantText: "not a JSON object"},
		{name: "empty object", status: 200, ctype: "application/json", body: `{}`, wantText: "without an access_token"},
		{name: "access_token not a string", status: 200, ctype: "application/json", body: `{"access_token":42}`, wantText: "without an access_token"},
		{name: "json array", status: 200, ctype: "application/json", body: `[]`, wantText: "not a JSON object"},
		// A token that cannot be sent in a header would be cached as valid
		// and then fail every request.
		{name: "CRLF in the token", status: 200, ctype: "application/json",
			body: `{"access_token":"zz9tok\r\nX-Injected: 1","expires_in":60}`, wantText: "cannot be sent in a header"},
		{name: "LF in the token", status: 200, ctype: "application/json", body: `{"access_token":"zz9tok\nx"}`, wantText: "cannot be sent in a header"},
		{name: "NUL in the token", status: 200, ctype: "application/json", body: `{"access_token":"zz9tok\u0000x"}`, wantText: "cannot be sent in a header"},
		{name: "DEL in the token", status: 200, ctype: "application/json", body: `{"access_token":"zz9tok\u007fx"}`, wantText: "cannot be sent in a header"},
		{name: "CR in a form token", status: 200, ctype: "application/x-www-form-urlencoded", body: "access_token=zz9tok%0Dx", wantText: "cannot be sent in a header"},
		{name: "CRLF in the token type", status: 200, ctype: "application/json",
			body: `{"access_token":"zz9tok","token_type":"Bearer\r\nX-Injected: 1"}`, wantText: "cannot be sent in a header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTokenResponse(tt.status, tt.ctype, []byte(tt.body), time.Now())
			if err == nil {
				t.Fatal("no error")
			}
			var re *RetrieveError
			if tt.wantRetrieve != nil {
				if !errors.As(err, &re) || *re != *tt.wantRetrieve {
					t.Fatalf("got %#v, want %#v", err, tt.wantRetrieve)
				}
			} else if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("got %v, want ErrBadResponse", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			if strings.Contains(err.Error(), "zz9tok") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestTokenFormattingRedacts(t *testing.T) {
	tok := &Token{AccessToken: "sekrit-access", RefreshToken: "sekrit-refresh", TokenType: "bearer"}
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok),
		fmt.Sprintf("%v %+v %#v %s", *tok, *tok, *tok, *tok),
	} {
		if strings.Contains(s, "sekrit") {
			t.Errorf("formatted token leaks: %s", s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("formatted token does not say it is redacted: %s", s)
		}
	}
}

// FuzzParseTokenResponse checks that no answer makes the parser panic,
// that what it accepts is usable (a token that can be sent in a header,
// an expiry after its arrival and within maxLifetime), and that what it
// refuses is one of its two errors. The corpus in
// testdata/fuzz/FuzzParseTokenResponse holds the hostile cases: CR, LF and
// NUL in tokens, huge, negative, fractional and NaN lifetimes, form
// bodies, nested error objects.
func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","token_type":"Bearer","expires_in":86400}`,
		`{"access_token":"a","expires_in":"12"}`,
		`{"access_token":"a","expires":1401437772,"refresh_token":"r"}`,
		`{"error":"invalid_client"}`, `{}`, `<html>`, `{"expires_in":1e400}`, `{"access_token":"a","expires_in":1e300}`,
	} {
		f.Add(200, "application/json", []byte(s))
	}
	f.Add(200, "application/x-www-form-urlencoded", []byte("access_token=a&expires_in=10"))
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		tok, err := parseTokenResponse(status, ctype, body, now)
		if err != nil {
			var re *RetrieveError
			if tok != nil {
				t.Fatal("returned both a token and an error")
			}
			if !errors.As(err, &re) && !errors.Is(err, ErrBadResponse) {
				t.Fatalf("an error that is neither a RetrieveError nor ErrBadResponse: %v", err)
			}
			if re != nil && re.StatusCode != status {
				t.Fatalf("RetrieveError status %d for a %d", re.StatusCode, status)
			}
			return
		}
		if tok == nil || tok.AccessToken == "" || status < 200 || status > 299 {
			t.Fatalf("accepted an unusable response: status %d, %v", status, tok)
		}
		if !headerSafe(tok.AccessToken) || !headerSafe(tok.TokenType) || !headerSafe(tok.Type()+" "+tok.AccessToken) {
			t.Fatalf("accepted a token that cannot be sent in a header: %q %q", tok.TokenType, tok.AccessToken)
		}
		if !tok.Expiry.IsZero() && (!tok.Expiry.After(now) || tok.Expiry.After(now.Add(maxLifetime))) {
			t.Fatalf("accepted a token expiring at %v, for one that arrived at %v", tok.Expiry, now)
		}
		if !tok.Obtained.Equal(now) {
			t.Fatalf("obtained %v, want %v", tok.Obtained, now)
		}
	})
}
