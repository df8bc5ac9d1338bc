package auth

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes caps what is read of a token response. Real ones are a
// few hundred bytes; the cap keeps a misbehaving endpoint from filling
// memory.
const maxResponseBytes = 1 << 20

// maxLifetime is the longest token lifetime believed; ten years is as good
// as forever for a cache.
const maxLifetime = 10 * 365 * 24 * time.Hour

// tokenJSON is the RFC 6749 5.1 response as real endpoints send it:
// expires_in arrives as a number or a numeric string, and teen-quotes adds
// an absolute "expires" unix timestamp.
type tokenJSON struct {
	AccessToken      any             `json:"access_token"`
	TokenType        string          `json:"token_type"`
	RefreshToken     string          `json:"refresh_token"`
	Scope            any             `json:"scope"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Expires          json.RawMessage `json:"expires"`
	Error            any             `json:"error"`
	ErrorDescription any             `json:"error_description"`
}

// parseTokenResponse turns a token endpoint's answer into a Token, or into
// a *RetrieveError (the endpoint refused) or an ErrBadResponse (the answer
// is unusable). now is when the request was sent: the lifetime starts there.
func parseTokenResponse(status int, contentType string, body []byte, now time.Time) (*Token, error) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	var tj tokenJSON
	var parseErr error
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		// GitHub-style endpoints answer with a form unless asked for JSON.
		tj, parseErr = parseFormToken(body)
	default:
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		parseErr = dec.Decode(&tj)
	}

	if status < 200 || status > 299 {
		re := &RetrieveError{StatusCode: status}
		if parseErr == nil {
			re.ErrorCode = stringField(tj.Error)
			re.ErrorDescription = stringField(tj.ErrorDescription)
		}
		if re.ErrorCode == "" && re.ErrorDescription == "" && mediaType != "" && mediaType != "application/json" {
			re.ErrorDescription = "response body is " + mediaType
		}
		return nil, re
	}
	if parseErr != nil {
		if mediaType != "" && !strings.Contains(mediaType, "json") {
			return nil, badResponse("status %d with a %s body, not JSON", status, mediaType)
		}
		return nil, badResponse("status %d with a body that is not a JSON object: %v", status, parseErr)
	}
	if code := stringField(tj.Error); code != "" {
		// Some endpoints report errors with a 200; RFC 6749 5.2 fields win.
		return nil, &RetrieveError{StatusCode: status, ErrorCode: code, ErrorDescription: stringField(tj.ErrorDescription)}
	}
	access, ok := tj.AccessToken.(string)
	if !ok || access == "" {
		return nil, badResponse("status %d without an access_token", status)
	}
	// Cached, such a token would make every request fail (and /readyz say
	// ready): the value is never shown, only what is wrong with it.
	if !headerSafe(access) {
		return nil, badResponse("status %d with an access_token that cannot be sent in a header (it holds a control character such as CR, LF or NUL)", status)
	}
	if !headerSafe(tj.TokenType) {
		return nil, badResponse("status %d with a token_type that cannot be sent in a header (it holds a control character such as CR, LF or NUL)", status)
	}
	tok := &Token{
		AccessToken:  access,
		TokenType:    tj.TokenType,
		RefreshToken: tj.RefreshToken,
		Scope:        stringField(tj.Scope),
		Obtained:     now,
	}
	// expires_in is relative and so immune to clock skew between us and
	// the endpoint: it wins over an absolute "expires" when both are sent.
	// Lifetimes past maxLifetime are clamped: converting a larger float to
	// a Duration would overflow into the past. One under a nanosecond is
	// kept positive, so that it reads as a (tiny) lifetime and not as
	// none: the cache spaces the token requests of short lifetimes.
	if secs, ok := numberField(tj.ExpiresIn); ok && secs > 0 {
		tok.Expiry = now.Add(max(time.Nanosecond, time.Duration(min(secs, maxLifetime.Seconds())*float64(time.Second))))
	} else if unix, ok := numberField(tj.Expires); ok && unix > float64(now.Unix()) {
		// An absolute expiry already past means our clocks disagree; the
		// token is then used until a 401 rather than refetched per request.
		tok.Expiry = time.Unix(int64(min(unix, float64(now.Add(maxLifetime).Unix()))), 0)
	}
	return tok, nil
}

// parseFormToken reads an application/x-www-form-urlencoded token response.
func parseFormToken(body []byte) (tokenJSON, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return tokenJSON{}, err
	}
	tj := tokenJSON{
		TokenType:    vals.Get("token_type"),
		RefreshToken: vals.Get("refresh_token"),
		Scope:        vals.Get("scope"),
	}
	if v := vals.Get("access_token"); v != "" {
		tj.AccessToken = v
	}
	if v := vals.Get("expires_in"); v != "" {
		tj.ExpiresIn = json.RawMessage(strconv.Quote(v))
	}
	if v := vals.Get("error"); v != "" {
		tj.Error = v
		tj.ErrorDescription = vals.Get("error_description")
	}
	return tj, nil
}

// numberField reads a JSON number or a string holding one.
func numberField(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	s := string(raw)
	if s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f != f { // f != f: NaN
		return 0, false
	}
	return f, true
}

// stringField renders a loosely typed JSON field (a string, or a list of
// scopes) as text.
func stringField(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			if s, ok := p.(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	case json.Number:
		return x.String()
	default:
		return ""
	}
}

// headerSafe reports whether s may appear in an HTTP header value: RFC
// 9110 5.5 allows no control character but HTAB (CR, LF and NUL above
// all, which would split or cut the header). It is what
// golang.org/x/net/http/httpguts.ValidHeaderFieldValue checks, and what
// net/http refuses to send.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
