package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// awkwardSecret has a character of every kind that the encodings treat
// differently, so that each encoded form differs from the raw one.
const (
	awkwardID     = "client id:1"
	awkwardSecret = `s3cr+t/with&odd=chars "quoted" <b>%25 ü`
	awkwardCode   = "code+with/odd&chars"
	awkwardVerify = "verifier~with.odd_chars+/="
)

// secretForms is every form in which a token request's secrets could be
// echoed back by an endpoint that repeats what it was sent.
func secretForms(id string, secrets ...string) map[string]string {
	forms := map[string]string{}
	for _, s := range secrets {
		forms["raw "+s] = s
		forms["query-escaped "+s] = url.QueryEscape(s)
		forms["path-escaped "+s] = url.PathEscape(s)
		j, _ := json.Marshal(s)
		forms["json "+s] = strings.Trim(string(j), `"`)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secrets[0])))
	forms["basic"] = basic
	forms["basic unpadded"] = strings.TrimRight(basic, "=")
	return forms
}

// echoEndpoint answers every token request with an error whose
// description repeats the request: the body as sent, the body as decoded,
// the Authorization header, and the same again with the encodings an
// echoing server might apply.
func echoEndpoint(t *testing.T, status int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		vals, _ := url.ParseQuery(string(body))
		var decoded []string
		for k, v := range vals {
			decoded = append(decoded, k+"="+v[0], url.PathEscape(v[0]))
		}
		var jsonFields map[string]string
		if json.Unmarshal(body, &jsonFields) == nil {
			for k, v := range jsonFields {
				decoded = append(decoded, k+"="+v, url.QueryEscape(v), url.PathEscape(v))
			}
		}
		echo := "you sent " + string(body) + " decoded " + strings.Join(decoded, " ") +
			" with Authorization: " + r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request " + echo, "error_description": echo})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func assertNoForms(t *testing.T, where, text string, forms map[string]string) {
	t.Helper()
	for name, f := range forms {
		if f != "" && strings.Contains(text, f) {
			t.Errorf("%s holds the %s form of a secret: %s", where, name, text)
		}
	}
}

func TestTokenRequestErrorsCarryNoSecretInAnyEncoding(t *testing.T) {
	for _, status := range []int{400, 200} { // 200: an RFC 6749 5.2 error in a success
		for _, method := range []AuthMethod{ClientSecretPost, ClientSecretBasic} {
			for _, format := range []BodyFormat{FormBody, JSONBody} {
				srv := echoEndpoint(t, status)
				client := Client{TokenURL: srv.URL, ClientID: awkwardID, ClientSecret: awkwardSecret, AuthMethod: method, BodyFormat: format}
				name := string(method) + " " + string(format)

				_, err := (&ClientCredentials{Client: client}).Token(context.Background())
				var re *RetrieveError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), "[redacted]") {
					t.Fatalf("%s: got %v", name, err)
				}
				assertNoForms(t, name+": client credentials error", err.Error(), secretForms(awkwardID, awkwardSecret))

				g := &RefreshGrant{Client: client, Name: "x", InitialRefreshToken: "refresh/tok+en&x=y", Store: &memStore{}}
				g.Open(context.Background())
				_, err = g.Token(context.Background())
				if err == nil {
					t.Fatalf("%s: refresh grant: no error", name)
				}
				assertNoForms(t, name+": refresh error", err.Error(), secretForms(awkwardID, awkwardSecret, "refresh/tok+en&x=y"))
			}
		}
	}
}

func TestTransportErrorsCarryNeitherTheTokenURLsQueryNorASecret(t *testing.T) {
	// Closed: connection refused, whose *url.Error names the URL.
	closed := httptest.NewServer(nil)
	closed.Close()
	client := Client{TokenURL: closed.URL + "/token?api_key=query-secret-1", ClientID: "id", ClientSecret: "s"}
	_, err := (&ClientCredentials{Client: client}).Token(context.Background())
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		t.Fatalf("got %v, want a *url.Error", err)
	}
	if strings.Contains(err.Error(), "query-secret-1") || strings.Contains(ue.URL, "query-secret-1") {
		t.Errorf("the token URL's query is in the error: %v (URL %q)", err, ue.URL)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("the cause is lost: %v", err)
	}

	// A timeout stays a timeout once redacted, for the 504 it maps to.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // net/http notices the client leave only once the body is read
		<-r.Context().Done()
	}))
	defer hang.Close()
	client = Client{TokenURL: hang.URL + "/token?api_key=query-secret-2", ClientID: "id", ClientSecret: "s",
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}}
	_, err = (&ClientCredentials{Client: client}).Token(context.Background())
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Errorf("got %v, want a net.Error that is a timeout", err)
	}
	if strings.Contains(err.Error(), "query-secret-2") {
		t.Errorf("the token URL's query is in the error: %v", err)
	}
}

func TestRedactorCoversEveryForm(t *testing.T) {
	r := newRedactor(awkwardID, awkwardSecret, "", awkwardCode, awkwardVerify)
	forms := secretForms(awkwardID, awkwardSecret, awkwardCode, awkwardVerify)
	var all []string
	for _, f := range forms {
		all = append(all, "<"+f+">")
	}
	out := r.string(strings.Join(all, " "))
	assertNoForms(t, "redacted text", out, forms)
	if strings.Count(out, "[redacted]") < len(forms)-2 { // some forms coincide
		t.Errorf("too little redacted: %s", out)
	}
	// Text without a secret, and errors around it, are kept as they are.
	if got := r.string("nothing secret here"); got != "nothing secret here" {
		t.Errorf("changed clean text: %q", got)
	}
	inner := errors.New("plain")
	if got := r.error(inner); got != inner {
		t.Errorf("wrapped a clean error: %v", got)
	}
	leaky := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused by " + awkwardSecret)}
	got := r.error(leaky)
	var op *net.OpError
	if strings.Contains(got.Error(), awkwardSecret) || !errors.As(got, &op) {
		t.Errorf("got %v", got)
	}
}

// An endpoint's error text goes into every error answer, access-log line
// and /status while the proxy backs off, so one that answers with a huge
// error or error_description (up to the 1 MiB a response may have) must
// not be repeated whole; and the cut, made after the redaction, must not
// leave part of a secret that straddles it.
func TestEndpointErrorTextIsBounded(t *testing.T) {
	secret := "huge-s3cret-value"
	for _, field := range []string{"error", "error_description"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			// A secret at every offset around any cut a bound might make.
			var b strings.Builder
			for b.Len() < 900<<10 {
				b.WriteString("ü" + secret)
			}
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", field: b.String()})
		}))
		client := Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: secret}
		_, err := (&ClientCredentials{Client: client}).Token(context.Background())
		srv.Close()
		var re *RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("%s: got %v", field, err)
		}
		if n := len(err.Error()); n > 4<<10 {
			t.Errorf("%s of 900 KiB: the error text is %d bytes", field, n)
		}
		for _, part := range []string{secret[:6], secret[len(secret)-6:]} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: part of the secret (%q) is in the error", field, part)
			}
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("%s: the cut split a character", field)
		}
	}
}

// Encodings an echoing endpoint may apply besides the ones the request
// used: percent-encoding with lower-case hex (RFC 3986 2.1 makes it the
// same), HTML escaping (an error page), JSON with every non-ASCII
// character escaped (Python's json.dumps), base64 of the secret alone, and
// the Basic value as clients that do not form-encode its parts send it.
func TestRedactorCoversNeighbouringEncodings(t *testing.T) {
	r := newRedactor(awkwardID, awkwardSecret)
	lowerHex := func(s string) string {
		return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
	}
	var asciiJSON strings.Builder
	for _, c := range awkwardSecret {
		switch {
		case c == '"':
			asciiJSON.WriteString(`\"`)
		case c > 0x7f:
			fmt.Fprintf(&asciiJSON, `\u%04x`, c)
		default:
			asciiJSON.WriteRune(c)
		}
	}
	for name, form := range map[string]string{
		"query-escaped, lower-case hex": lowerHex(url.QueryEscape(awkwardSecret)),
		"path-escaped, lower-case hex":  lowerHex(url.PathEscape(awkwardSecret)),
		"HTML-escaped":                  html.EscapeString(awkwardSecret),
		"JSON, ASCII only":              asciiJSON.String(),
		"base64":                        base64.StdEncoding.EncodeToString([]byte(awkwardSecret)),
		"base64url":                     base64.RawURLEncoding.EncodeToString([]byte(awkwardSecret)),
		"Basic, parts as they are":      base64.StdEncoding.EncodeToString([]byte(awkwardID + ":" + awkwardSecret)),
	} {
		if out := r.string("echo: <" + form + ">"); strings.Contains(out, form) {
			t.Errorf("the %s form is kept: %s", name, out)
		}
	}
}

// An endpoint that echoes the whole request body in base64 puts each
// secret at whatever offset it had in the body, so the secret's bytes land
// in base64 groups shared with their neighbours: the base64 of the secret
// alone is not in the text. Whatever the alignment and the alphabet, no
// run of the secret's bytes can be decoded from the error.
func TestBase64EchoOfTheWholeBodyLeaksNoSecret(t *testing.T) {
	const secret, password = "client-secret-5b0e9d14c7a2f86e3b91d0c4", "password-8e1f4a7c92d05b3e6a1c9f27d4"
	subject := filepath.Join(t.TempDir(), "subject")
	writeFile(t, subject, []byte("subject-token-3c9a0e7f15b2d84a6f0c1e9b"))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for shift := range 3 {
			var body []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request",
					"error_description": enc.EncodeToString(append([]byte(strings.Repeat(">", shift)), body...))})
			}))
			for _, s := range []Settings{
				{Grant: GrantTokenExchange, SubjectTokenFile: subject},
				{Grant: GrantPassword, Username: "alice", Password: password},
			} {
				s.Client = Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: secret}
				_, err := newTestSource(t, s, Options{}).Token(context.Background())
				if err == nil {
					t.Fatalf("%s: no error", s.Grant)
				}
				for _, leak := range decodedRuns(err.Error()) {
					for _, v := range []string{secret, password, "subject-token-3c9a0e7f15b2d84a6f0c1e9b"} {
						for i := 0; i+10 <= len(v); i++ {
							if strings.Contains(leak, v[i:i+10]) {
								t.Fatalf("shift %d, %s: %q decodes from the error: %v", shift, s.Grant, v[i:i+10], err)
							}
						}
					}
				}
			}
			srv.Close()
		}
	}
}

// decodedRuns decodes every run of base64 characters in text, from each
// of the four starting points and in both alphabets, as far as it goes.
func decodedRuns(text string) []string {
	var out []string
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/_-]{8,}`).FindAllString(text, -1) {
		for start := range 4 {
			r := run[start:]
			r = r[:len(r)/4*4]
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				b, _ := enc.DecodeString(r)
				out = append(out, string(b))
			}
		}
	}
	return out
}
