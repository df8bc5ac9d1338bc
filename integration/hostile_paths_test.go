package integration

import (
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// TestBinaryRefusesEveryDotSegmentVariant sends, through the built
// binary, paths that some server reads as a step out of the target's base
// path, and checks that each gets 400 and none reaches the API, while
// paths with dots that are not segments still go through.
func TestBinaryRefusesEveryDotSegmentVariant(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	api := fakeapi.New(f, clientID, clientSecret, nil)
	apiURL := newServer(t, api)
	var mu sync.Mutex
	var reached []string // escaped paths as the API saw them
	api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		mu.Lock()
		reached = append(reached, r.URL.EscapedPath())
		mu.Unlock()
		return false
	})
	config := configFor(t, f, apiURL+"/base", setup{tokenURL: apiURL + f.TokenPath})
	p := runBinary(t, bin, config)
	e := &env{t: t, api: api, addr: p.addr}

	for _, path := range []string{
		"/a/../b", "/a/..;/b", "/a/..;jsessionid=1/b", `/a/..\b`, `/a\..\b`, "/a/..%5cb", "/a/..%5Cb",
		"/a/%2e%2e/b", "/a/%2E%2e/b", "/a/.%2e/b", "/a/%2e./b", "/a/..%2fb", "/a/%252e%252e/b",
		"/a/%252E%252E%252fb", "/a/..%255cb", "/a/..%00/b", "/a/.../b", "/a/..%20/b",
		"/a/%ef%bc%8e%ef%bc%8e/b", "/a/..",
	} {
		status, body := e.raw("GET /redgifs" + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if status != 400 || !strings.Contains(body, `"error":"bad_request"`) {
			t.Errorf("%s: %d %s, want 400 bad_request", path, status, strings.TrimSpace(body))
		}
	}
	mu.Lock()
	if len(reached) != 0 {
		t.Errorf("refused paths reached the API as %q", reached)
	}
	reached = nil
	mu.Unlock()

	for path, want := range map[string]string{
		"/v1.0/a..b/file.tar.gz": "/base/v1.0/a..b/file.tar.gz",
		"/projects/group%2Fname": "/base/projects/group%2Fname",
		"/search/100%25":         "/base/search/100%25",
	} {
		if status, body := e.raw("GET /redgifs" + path + " HTTP/1.1\r\nHost: x\r\n\r\n"); status != 200 {
			t.Errorf("%s: %d %s", path, status, body)
			continue
		}
		mu.Lock()
		got := reached[len(reached)-1]
		mu.Unlock()
		if !strings.EqualFold(got, want) {
			t.Errorf("%s reached the API as %q, want %q", path, got, want)
		}
	}
}

// TestBinaryNeverSendsTheTokenInATrace: an upstream that honours TRACE
// (Apache's default TraceEnable On) echoes the request it received, so a
// forwarded TRACE would hand the client the injected token, usable from
// anywhere past inbound.api_keys and allow_cidrs. TRACE and IIS's TRACK,
// in any case, get 405 and never reach the upstream.
func TestBinaryNeverSendsTheTokenInATrace(t *testing.T) {
	bin := buildBinary(t)
	f := fakeapi.RedGIFs()
	api := fakeapi.New(f, clientID, clientSecret, nil)
	apiURL := newServer(t, api)
	api.SetAPIHook(func(w http.ResponseWriter, r *http.Request, rec *fakeapi.Request) bool {
		if !strings.EqualFold(r.Method, "TRACE") && !strings.EqualFold(r.Method, "TRACK") {
			return false
		}
		w.Header().Set("Content-Type", "message/http")
		dump, _ := httputil.DumpRequest(r, false)
		w.Write(dump)
		return true
	})
	p := runBinary(t, bin, configFor(t, f, apiURL, setup{}))
	client := &http.Client{Timeout: time.Minute}
	get := func(method string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+p.addr+"/redgifs"+f.APIPath, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get("GET"); resp.StatusCode != 200 { // a token is cached, as in production
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	for _, method := range []string{"TRACE", "TRACK", "trace"} {
		resp, body := get(method)
		for _, s := range api.Secrets() {
			if strings.Contains(body, s) {
				t.Errorf("%s: the answer holds the token (%.12s...):\n%s", method, s, body)
			}
		}
		if resp.StatusCode != 405 || !strings.Contains(body, `"error":"method_not_allowed"`) || resp.Header.Get("Allow") == "" {
			t.Errorf("%s: %d Allow %q %s, want 405 method_not_allowed with Allow", method, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
	for _, r := range api.APIRequests() {
		if r.Method != "GET" {
			t.Errorf("a %s reached the API", r.Method)
		}
	}
}
