package integration

// `authproxy login` sends the client secret and the code to the token
// endpoint: the same rules as every token request apply.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/syncbuf"
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

// binaryLogin is `authproxy login NAME --no-browser` run from the built
// binary, as a user runs it.
type binaryLogin struct {
	authURL string          // the authorize URL it printed
	stderr  *syncbuf.Buffer // its notes and errors, as they come
	done    chan struct{}   // closed when it has exited
	code    int             // its exit code, once done
	stdout  string          // all it printed, once done
}

func startBinaryLogin(t *testing.T, bin, config, name string) *binaryLogin {
	t.Helper()
	cmd := exec.Command(bin, "login", name, "--config", config, "--no-browser")
	l := &binaryLogin{stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = l.stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	lines := bufio.NewScanner(stdout)
	for l.authURL == "" && lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if s := strings.TrimSpace(lines.Text()); strings.HasPrefix(s, "http") {
			l.authURL = s
		}
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stdout); rest <- string(b) }()
	go func() {
		defer close(l.done)
		out.WriteString(<-rest) // before Wait, which closes the pipe
		cmd.Wait()
		l.code, l.stdout = cmd.ProcessState.ExitCode(), out.String()
	}()
	t.Cleanup(func() {
		if !l.exited() {
			cmd.Process.Kill()
			<-l.done
		}
	})
	if l.authURL == "" {
		<-l.done
		t.Fatalf("login printed no URL: exit %d\n%s", l.code, l.stderr)
	}
	return l
}

func (l *binaryLogin) exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code and all the login wrote.
func (l *binaryLogin) wait() (int, string) {
	<-l.done
	return l.code, l.stdout + l.stderr.String()
}

// getPage is a browser's GET: the status and the page.
func getPage(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(page), err
}

// codeExchanges counts the authorization codes the token endpoint is sent,
// and holds each exchange until release.
type codeExchanges struct {
	mu      sync.Mutex
	perCode map[string]int
	held    chan struct{}
}

func (c *codeExchanges) wrap(tokenPath string) func(http.Handler) http.Handler {
	c.perCode, c.held = map[string]int{}, make(chan struct{})
	return func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tokenPath {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				if fields, _ := url.ParseQuery(string(body)); fields.Get("grant_type") == "authorization_code" {
					c.mu.Lock()
					c.perCode[fields.Get("code")]++
					c.mu.Unlock()
					<-c.held
				}
			}
			api.ServeHTTP(w, r)
		})
	}
}

func (c *codeExchanges) of(code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.perCode[code]
}

func (c *codeExchanges) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.perCode {
		n += v
	}
	return n
}

// A request to login's callback whose state is missing or wrong (any web
// page the user has open can send one to 127.0.0.1) gets 400 and is
// otherwise ignored: the login goes on waiting, and the right redirect,
// arriving after, completes it. An error redirect with a wrong state is
// as forged as any other.
func TestBinaryLoginIgnoresAForgedCallback(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.Redbooth()
	exchanges := &codeExchanges{}
	e := start(t, f, setup{wrapAPI: exchanges.wrap(f.TokenPath)})
	close(exchanges.held) // nothing held here
	l := startBinaryLogin(t, bin, e.config, "redbooth")
	real := browseAndAllow(t, l.authURL) // the browser's redirect, arriving last
	u, _ := url.Parse(real)
	state, code := u.Query().Get("state"), u.Query().Get("code")
	u.RawQuery = ""
	forged := []string{"?code=forged-code-1", "?state=0123456789abcdef&code=forged-code-2", "?state=0123456789abcdef&error=access_denied&error_description=forged-denial"}
	for i, q := range forged {
		status, page, err := getPage(u.String() + q)
		if err != nil || l.exited() {
			code, out := l.wait()
			t.Fatalf("after forged callback %d (%s): %v; login exited with %d, want it still waiting:\n%s", i+1, q, err, code, out)
		}
		if status != http.StatusBadRequest || !strings.Contains(page, "ignored") {
			t.Errorf("forged callback %s: %d %q; want 400 and a page that says it was ignored", q, status, page)
		}
		waitFor(t, "login to say it ignored the callback", func() bool {
			return strings.Count(l.stderr.String(), "ignored a redirect") == i+1 || l.exited()
		})
	}
	status, page, err := getPage(real)
	if err != nil || status != 200 || !strings.Contains(page, "logged in") {
		t.Errorf("the real redirect: %d %q %v", status, page, err)
	}
	exit, out := l.wait()
	t.Logf("figures: login exit %d after %d forged callbacks and then the real one", exit, len(forged))
	if exit != 0 || !strings.Contains(out, "Logged in to redbooth") {
		t.Errorf("login: exit %d, want 0 and logged in:\n%s", exit, out)
	}
	if n := exchanges.of(code); n != 1 || exchanges.total() != 1 {
		t.Errorf("the token endpoint was sent the real code %d times and %d codes in all; want the real one once", n, exchanges.total())
	}
	// The authorize URL holds the state; nothing else may.
	for _, s := range []string{state, code, "forged-code", "0123456789abcdef", "forged-denial"} {
		if strings.Contains(strings.ReplaceAll(out, l.authURL, ""), s) {
			t.Errorf("login's output quotes a callback's value %q:\n%s", s, out)
		}
	}
	e.assertNoSecretsIn("the login's output", out)
}

// Several redirects with the right state (a browser's retry, a reload)
// exchange the code once: the first wins, the others get a page that says
// the login is already under way, and login reports that one exchange.
func TestBinaryLoginExchangesACodeOnce(t *testing.T) {
	const callbacks = 3
	bin := buildBinary(t)
	f := fakeapi.Redbooth()
	exchanges := &codeExchanges{}
	e := start(t, f, setup{wrapAPI: exchanges.wrap(f.TokenPath)})
	var once sync.Once
	release := func() { once.Do(func() { close(exchanges.held) }) }
	t.Cleanup(release) // before the fake API's server closes
	l := startBinaryLogin(t, bin, e.config, "redbooth")
	callback := browseAndAllow(t, l.authURL)
	u, err := url.Parse(callback)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Query().Get("code")

	type answer struct {
		status int
		page   string
		err    error
	}
	answers := make(chan answer, callbacks)
	var answered atomic.Int32
	for range callbacks {
		go func() {
			status, page, err := getPage(callback)
			answered.Add(1)
			answers <- answer{status, page, err}
		}()
	}
	// Hold the exchange until either every callback has reached the token
	// endpoint, or all but the one exchanging have had their answer.
	waitFor(t, "every callback to be exchanged or answered", func() bool {
		return exchanges.of(code) == callbacks || (exchanges.of(code) == 1 && answered.Load() == callbacks-1)
	})
	release()
	var loggedIn, refused int
	for range callbacks {
		a := <-answers
		switch {
		case a.err == nil && a.status == 200 && strings.Contains(a.page, "logged in"):
			loggedIn++
		case a.err == nil && a.status == http.StatusConflict && strings.Contains(a.page, "already"):
			refused++
		default:
			t.Logf("a callback's answer: %d %q %v", a.status, a.page, a.err)
		}
	}
	exit, out := l.wait()
	t.Logf("figures: %d callbacks with the right state: the code was sent %d times to the token endpoint; login exit %d", callbacks, exchanges.of(code), exit)
	if n := exchanges.of(code); n != 1 {
		t.Errorf("the code was sent to the token endpoint %d times, want once", n)
	}
	if loggedIn != 1 || refused != callbacks-1 {
		t.Errorf("%d pages said logged in and %d already under way; want 1 and %d", loggedIn, refused, callbacks-1)
	}
	if exit != 0 || !strings.Contains(out, "Logged in to redbooth") {
		t.Errorf("login: exit %d, want 0 and logged in:\n%s", exit, out)
	}
	if st := e.api.Stats(); st.Logins != 1 || st.InvalidGrants != 0 {
		t.Errorf("the fake API counts %d logins and %d invalid grants; want 1 and 0", st.Logins, st.InvalidGrants)
	}
	e.assertNoSecretsIn("the login's output", out)
}
