package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// redacted replaces a secret in text that leaves the process.
const redacted = "[redacted]"

// minSecretLen is the shortest secret that is redacted. A secret of a
// few characters protects nothing, and replacing every "s" in an error
// (tests use such secrets) would leave it unreadable.
const minSecretLen = 4

// redactor removes one token request's secrets from text that came back
// from the network or the HTTP client: an endpoint that echoes the
// request in its error, or a *url.Error naming the token URL. Every error
// a token request returns passes through one, so that no secret reaches
// a client's error body, a log line or /status in any encoding the
// request used or an echoing server might apply.
type redactor struct {
	forms []string // longest first, so a form is not half-replaced by a shorter one inside it
}

// newRedactor covers the client secret (also as the HTTP Basic value it
// goes out in, with clientID), and the request's other secrets: the
// refresh token, the authorization code and its PKCE verifier.
func newRedactor(clientID, clientSecret string, others ...string) redactor {
	var forms []string
	add := func(s string) {
		if len(s) < minSecretLen {
			return
		}
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s))
		for _, escapeHTML := range []bool{true, false} {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(escapeHTML)
			enc.Encode(s)
			forms = append(forms, strings.TrimSuffix(strings.TrimSpace(b.String()), `"`)[1:])
		}
		// What an echo may have made of it: percent-encoding in lower
		// case, HTML escaping (an error page), JSON escaping every
		// non-ASCII character (Python's default), base64 of it alone.
		forms = append(forms, lowerHex(url.QueryEscape(s)), lowerHex(url.PathEscape(s)),
			html.EscapeString(s), htmlEntities.Replace(s), asciiJSON(forms[len(forms)-1]),
			strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(s)), "="),
			base64.RawURLEncoding.EncodeToString([]byte(s)))
		forms = append(forms, inBase64Stream(s)...)
	}
	add(clientSecret)
	for _, s := range others {
		add(s)
	}
	if len(clientSecret) >= minSecretLen {
		// What SetBasicAuth sends (RFC 6749 2.3.1 form-encodes both parts);
		// without its padding, so that a truncated echo is caught too.
		basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)))
		forms = append(forms, strings.TrimRight(basic, "="))
		// And as clients that do not form-encode the parts send it.
		plain := base64.StdEncoding.EncodeToString([]byte(clientID + ":" + clientSecret))
		forms = append(forms, strings.TrimRight(plain, "="))
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return redactor{forms: slices.Compact(forms)}
}

// inBase64Stream is what base64 of a longer text (an endpoint echoing
// the whole request body in base64) holds of s, at each of the three
// offsets s may have in that text: the 4-character groups made of s's
// bytes alone. The groups at either end, shared with the neighbouring
// bytes, differ with them and are left, so that at most two bytes of s
// stay at each end. Too short to be told from other text, none.
func inBase64Stream(s string) []string {
	var forms []string
	for offset := range 3 {
		first := (offset + 2) / 3     // the first group wholly of s
		last := (offset + len(s)) / 3 // one past the last
		if last-first < 2 {
			continue
		}
		text := append([]byte(strings.Repeat("\x00", offset)), s...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			forms = append(forms, enc.EncodeToString(text)[4*first:4*last])
		}
	}
	return forms
}

// htmlEntities is HTML escaping with the named and hex entities that
// escapers other than Go's use.
var htmlEntities = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;")

// lowerHex writes the hex digits of s's percent-escapes in lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		for j := i + 1; j <= i+2; j++ {
			if 'A' <= b[j] && b[j] <= 'F' {
				b[j] += 'a' - 'A'
			}
		}
	}
	return string(b)
}

// asciiJSON escapes every non-ASCII character of s, JSON-escaped
// already, as \uXXXX (a surrogate pair above U+FFFF).
func asciiJSON(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c < utf8.RuneSelf:
			b.WriteRune(c)
		case c > 0xffff:
			r1, r2 := utf16.EncodeRune(c)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, c)
		}
	}
	return b.String()
}

// string returns s with every form of every secret replaced.
func (r redactor) string(s string) string {
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, redacted)
		}
	}
	return s
}

func (r redactor) holds(s string) bool {
	return r.string(s) != s
}

// error returns err with no secret in its text, and the same for what
// errors.Is and errors.As find in it as far as this package made it:
//   - a *RetrieveError (the endpoint's own words) is scrubbed in place;
//   - a *url.Error is rebuilt without the token URL's query, which may
//     hold a key, and with its cause redacted in turn;
//   - any other error whose text holds a secret is wrapped in one whose
//     text is redacted, and which still unwraps to it and still says
//     whether it was a timeout.
func (r redactor) error(err error) error {
	var re *RetrieveError
	if errors.As(err, &re) {
		// Cut after the redaction, so that no part of a secret is left
		// where the cut fell.
		re.ErrorCode = clip(r.string(re.ErrorCode), maxEndpointCode)
		re.ErrorDescription = clip(r.string(re.ErrorDescription), maxEndpointDescription)
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue == err {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: r.error(ue.Err)}
	}
	if err == nil || !r.holds(err.Error()) {
		return err
	}
	return &redactedError{text: r.string(err.Error()), err: err}
}

// The most of an endpoint's error and error_description kept. They are
// repeated in every error answer, access-log line and /status while the
// proxy backs off; real ones are a word and a sentence or two.
const (
	maxEndpointCode        = 256
	maxEndpointDescription = 1024
)

// clip shortens s to at most max bytes and a mark, not splitting a
// character.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d bytes cut)", len(s)-cut)
}

// redactURL drops a URL's query and any password: a token URL may carry
// an API key in either.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "", false
		return u.String() + "?" + redacted
	}
	return u.String()
}

// redactedError is an error whose text held a secret.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// Timeout keeps a redacted network error a timeout, which the proxy
// answers with 504 rather than 502.
func (e *redactedError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}
