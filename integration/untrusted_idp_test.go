package integration

// Promises that hold whatever the identity provider answers, checked
// through the built binary: its logs and its answers to clients are what
// an operator and a client see.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

// runBuilt runs the built binary on config until the test ends, then
// stops it with SIGTERM and expects a clean exit.
func runBuilt(t *testing.T, bin, config string) *replicaProc {
	t.Helper()
	r := &replicaProc{logs: &syncbuf.Buffer{}, exit: make(chan error, 1)}
	r.cmd = exec.Command(bin, "--config", config)
	r.cmd.Env = os.Environ()
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, admin, logDone := listening(t, stderr, r.logs)
	r.addr, r.admin = addr, "http://"+admin
	go func() {
		<-logDone
		r.exit <- r.cmd.Wait()
	}()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-r.exit; err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("proxy logs:\n%s", r.logs)
		}
	})
	return r
}

// getBody sends a GET and returns the status and body.
func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// echoRequest is a token endpoint that repeats the request in its error,
// as some do: the body as it came (form- or JSON-encoded), the fields
// decoded, and the Authorization header (Basic: base64).
func echoRequest(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	echo := "you sent " + string(body) + " with Authorization: " + r.Header.Get("Authorization")
	if vals, err := url.ParseQuery(string(body)); err == nil {
		for k, v := range vals {
			echo += " " + k + "=" + v[0]
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": echo})
}

// encodedForms is every way a secret can be written in a request or an
// echo of it.
func encodedForms(id string, secrets ...string) map[string]string {
	forms := map[string]string{
		"Basic value": base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secrets[0]))),
	}
	for _, s := range secrets {
		j, _ := json.Marshal(s)
		forms["raw "+s] = s
		forms["url-encoded "+s] = url.QueryEscape(s)
		forms["path-encoded "+s] = url.PathEscape(s)
		forms["JSON-encoded "+s] = strings.Trim(string(j), `"`)
	}
	return forms
}

// decodedJSON returns every string in text's JSON values (one a line),
// decoded, space-separated.
func decodedJSON(text string) string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for line := range strings.Lines(text) {
		var v any
		if json.Unmarshal([]byte(line), &v) == nil {
			walk(v)
		}
	}
	return strings.Join(out, " ")
}

func TestBuiltBinaryNeverShowsAnEchoedSecret(t *testing.T) {
	bin := buildBinary(t)
	const secret = `s3cr+t/with&odd=chars "q" <b>%25`
	const refresh = "refresh/tok+en&x=y"
	for _, tt := range []struct {
		name  string
		f     fakeapi.Flavor
		setup setup
	}{
		{"form body, secret in it", fakeapi.RedGIFs(), setup{}},
		{"JSON body", fakeapi.ProductHunt(), setup{}},
		{"HTTP Basic", fakeapi.Generic(), setup{}},
		{"refresh token", fakeapi.Redbooth(), setup{tokenYAML: "      refresh_token: \"" + refresh + "\"\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := fakeapi.New(tt.f, clientID, secret, nil)
			api.SetTokenFault(echoRequest)
			s := tt.setup
			s.secret = secret
			p := runBuilt(t, bin, configFor(t, tt.f, newServer(t, api), s))
			status, body := getBody(t, "http://"+p.addr+"/"+tt.f.Name+tt.f.APIPath)
			_, statusPage := getBody(t, p.admin+"/status")
			if status != 502 || !strings.Contains(body, "[redacted]") {
				t.Errorf("got %d %s, want a 502 that says what was redacted", status, body)
			}
			for where, text := range map[string]string{"the client's error body": body, "/status": statusPage, "the logs": p.logs.String()} {
				text += decodedJSON(text) // what a reader of the JSON sees
				for name, form := range encodedForms(clientID, secret, refresh) {
					if strings.Contains(text, form) {
						t.Errorf("%s holds the %s form of a secret", where, name)
					}
				}
			}
		})
	}
	t.Run("a query in the token URL", func(t *testing.T) {
		closed := httptest.NewServer(nil)
		closed.Close()
		f := fakeapi.RedGIFs()
		api := fakeapi.New(f, clientID, clientSecret, nil)
		p := runBuilt(t, bin, configFor(t, f, newServer(t, api), setup{tokenURL: closed.URL + "/token?api_key=key-in-the-query"}))
		status, body := getBody(t, "http://"+p.addr+"/"+f.Name+f.APIPath)
		if status != 502 || !strings.Contains(body, "connection refused") {
			t.Errorf("got %d %s", status, body)
		}
		if strings.Contains(body+p.logs.String(), "key-in-the-query") {
			t.Errorf("the token URL's query reached the client or the logs: %s", body)
		}
	})
}

func TestBuiltBinaryRefusesATokenThatCannotBeSentInAHeader(t *testing.T) {
	bin := buildBinary(t)
	for name, answer := range map[string]string{
		"CRLF in the token":      `{"access_token":"zz9tok\r\nX-Injected: 1","token_type":"Bearer","expires_in":3600}`,
		"NUL in the token":       `{"access_token":"zz9tok\u0000","token_type":"Bearer","expires_in":3600}`,
		"LF in the token type":   `{"access_token":"zz9tok","token_type":"Bearer\nX-Injected: 1","expires_in":3600}`,
		"a control byte, raw":    "{\"access_token\":\"zz9tok\x01\",\"expires_in\":3600}",
		"CR in a form response":  "access_token=zz9tok%0D&expires_in=3600",
		"DEL in the token, form": "access_token=zz9tok%7F&expires_in=3600",
	} {
		t.Run(name, func(t *testing.T) {
			f := fakeapi.RedGIFs()
			api := fakeapi.New(f, clientID, clientSecret, nil)
			api.SetTokenFault(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if strings.HasPrefix(answer, "access_token=") {
					w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				}
				io.WriteString(w, answer)
			})
			p := runBuilt(t, bin, configFor(t, f, newServer(t, api), setup{}))
			status, body := getBody(t, "http://"+p.addr+"/"+f.Name+f.APIPath)
			var ans errorAnswer
			if err := json.Unmarshal([]byte(body), &ans); err != nil || status != 502 || ans.Error != "token_unavailable" ||
				!strings.Contains(ans.Detail, "unusable token response") {
				t.Errorf("got %d %s, want a 502 token_unavailable JSON error saying why", status, body)
			}
			if status, ready := getBody(t, p.admin+"/readyz"); status == 200 || !strings.Contains(ready, "token_endpoint_bad_response") {
				t.Errorf("/readyz: %d %s", status, ready)
			}
			if n := len(api.APIRequests()); n != 0 {
				t.Errorf("the API got %d requests", n)
			}
			if logs := p.logs.String(); strings.Contains(logs+decodedJSON(logs)+body, "zz9tok") {
				t.Error("the token is in the logs or the answer")
			}
		})
	}
}

// TestBuiltBinaryDoesNotRefreshForAPathThatAlways401s: a path the API
// refuses whatever the token (forbidden to this client) drove one token
// request after another. A revocation afterwards must still be recovered
// from at once.
func TestBuiltBinaryDoesNotRefreshForAPathThatAlways401s(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	api := fakeapi.New(f, clientID, clientSecret, nil)
	api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		if r.URL.Path != "/v2/always-401" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	p := runBuilt(t, bin, configFor(t, f, newServer(t, api), setup{}))
	base := "http://" + p.addr + "/" + f.Name
	if status, body := getBody(t, base+f.APIPath); status != 200 {
		t.Fatalf("warm-up: %d %s", status, body)
	}
	before := api.TokenRequests()
	const requests, workers = 1000, 10
	var wg sync.WaitGroup
	var not401 atomic.Int32
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	for range workers {
		wg.Go(func() {
			for range requests / workers {
				resp, err := client.Get(base + "/v2/always-401")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 401 {
					not401.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fetched := api.TokenRequests() - before
	t.Logf("%d requests to a path that always answers 401 caused %d token requests", requests, fetched)
	if not401.Load() != 0 {
		t.Errorf("%d requests did not get the upstream's 401", not401.Load())
	}
	// One refresh teaches the proxy that the path refuses fresh tokens.
	// (Under a scheduler that starves the replay, a request already on its
	// way with the token it fetched could cost one more.)
	if fetched > 3 {
		t.Errorf("%d token requests, want at most 3", fetched)
	}

	// Revoked now: the next request on a working path refreshes at once.
	api.RevokeAll()
	before = api.TokenRequests()
	if status, body := getBody(t, base+f.APIPath); status != 200 {
		t.Errorf("after a revocation: %d %s, want 200", status, body)
	}
	if got := api.TokenRequests() - before; got != 1 {
		t.Errorf("the revocation cost %d token requests, want 1", got)
	}
}

// TestBuiltBinaryAndTokenCommandRedeemEachRefreshTokenOnce: `authproxy
// token NAME` run next to a proxy on the same file store, each refreshing
// at the same moment, in either order, must not redeem one refresh token
// twice (the fake, like a strict server, retires a refresh token when it
// is redeemed: a second redemption fails and locks the account out).
func TestBuiltBinaryAndTokenCommandRedeemEachRefreshTokenOnce(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.Redbooth()
	f.ExpiresIn = time.Second
	api := fakeapi.New(f, clientID, clientSecret, nil)
	// The first redemption of a round is held until a second one arrives,
	// or for a second: long enough for the other process to redeem too,
	// if it does not wait for the store's lock.
	type round struct {
		held, second chan struct{}
		n            atomic.Int32
	}
	var cur atomic.Pointer[round]
	api.OnRefresh(func(string) {
		r := cur.Load()
		if r == nil {
			return
		}
		switch r.n.Add(1) {
		case 1:
			close(r.held)
			select {
			case <-r.second:
			case <-time.After(time.Second):
			}
		case 2:
			close(r.second)
		}
	})
	config := configFor(t, f, newServer(t, api), setup{tokenYAML: "      refresh_token: " + api.SeedRefreshToken() + "\n"})
	storePath := filepath.Join(filepath.Dir(config), "data", "tokens.json")
	p := runBuilt(t, bin, config)
	apiURL := "http://" + p.addr + "/" + f.Name + f.APIPath
	if status, body := getBody(t, apiURL); status != 200 {
		t.Fatalf("warm-up: %d %s", status, body)
	}
	proxyRequest := func() string {
		status, body := getBody(t, apiURL)
		if status != 200 {
			return fmt.Sprintf("proxy: %d %s", status, body)
		}
		return ""
	}
	tokenCommand := func() string {
		out, err := exec.Command(bin, "token", f.Name, "--config", config).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("authproxy token: %v: %s", err, out)
		}
		return ""
	}
	for i, order := range [][2]func() string{{proxyRequest, tokenCommand}, {tokenCommand, proxyRequest},
		{proxyRequest, tokenCommand}, {tokenCommand, proxyRequest}} {
		waitFor(t, "the stored access token to expire", func() bool { return storedExpiry(t, storePath, f.Name).Before(time.Now()) })
		r := &round{held: make(chan struct{}), second: make(chan struct{})}
		cur.Store(r)
		first := make(chan string, 1)
		go func() { first <- order[0]() }()
		select {
		case <-r.held:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the first refresh never reached the token endpoint", i)
		}
		if failed := order[1](); failed != "" {
			t.Errorf("round %d, second: %s", i, failed)
		}
		if failed := <-first; failed != "" {
			t.Errorf("round %d, first: %s", i, failed)
		}
		cur.Store(nil)
	}
	for rt, n := range api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
}

// storedExpiry reads the access token's expiry from a file store.
func storedExpiry(t *testing.T, path, name string) time.Time {
	var ff struct {
		Tokens map[string]struct{ Expiry time.Time }
	}
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &ff) != nil {
		return time.Now().Add(time.Hour) // not written yet, or mid-rename
	}
	return ff.Tokens[name].Expiry
}
