package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/redistest"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

// loginRun is `authproxy login redbooth` run in process against a fake
// Redbooth, once it has printed its authorize URL.
type loginRun struct {
	authURL, redirectURI string
	out                  *syncbuf.Buffer // stdout and stderr
	exit                 chan int
	stop                 context.CancelFunc // what Ctrl-C does
}

// startLoginWith writes a config with storeYAML and starts a login on it.
func startLoginWith(t *testing.T, storeYAML string) *loginRun {
	t.Helper()
	return startLoginTo(t, storeYAML, nil)
}

// startLoginTo is startLoginWith, with stderr also written to also.
func startLoginTo(t *testing.T, storeYAML string, also io.Writer) *loginRun {
	t.Helper()
	f := fakeapi.Redbooth()
	api := httptest.NewServer(fakeapi.New(f, "c", "s", nil))
	t.Cleanup(api.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirectURI := fmt.Sprintf("http://%s/callback", ln.Addr())
	ln.Close()
	path := writeConfig(t, fmt.Sprintf(`%s
upstreams:
  redbooth:
    target: %s
    token: {grant_type: refresh_token, url: %s%s, authorize_url: %s%s, redirect_uri: %q, client_id: c, client_secret: s}
`, storeYAML, api.URL, api.URL, f.TokenPath, api.URL, f.AuthorizePath, redirectURI))
	t.Setenv("AUTHPROXY_CONFIG", "")
	ctx, stop := context.WithCancel(context.Background())
	l := &loginRun{redirectURI: redirectURI, out: &syncbuf.Buffer{}, exit: make(chan int, 1), stop: stop}
	var stderr io.Writer = l.out
	if also != nil {
		stderr = io.MultiWriter(l.out, also)
	}
	pr, pw := io.Pipe()
	go func() {
		l.exit <- Run(ctx, Options{Args: []string{"login", "redbooth", "--config", path, "--no-browser"},
			Stdout: io.MultiWriter(pw, l.out), Stderr: stderr})
		pw.Close()
	}()
	for lines := bufio.NewScanner(pr); l.authURL == "" && lines.Scan(); {
		if s := strings.TrimSpace(lines.Text()); strings.HasPrefix(s, "http") {
			l.authURL = s
		}
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		stop()
		<-l.exit
	})
	if l.authURL == "" {
		code := <-l.exit
		l.exit <- code // for the cleanup
		t.Fatalf("login printed no URL: exit %d\n%s", code, l.out)
	}
	return l
}

// allow plays the browser: the fake's consent page approves and sends it
// to the redirect, whose page it returns; then login's exit code.
func (l *loginRun) allow(t *testing.T) int {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(l.authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp, err = http.Get(resp.Header.Get("Location")); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code := <-l.exit
	l.exit <- code // for the cleanup
	return code
}

// login says where the refresh token went, for every store type, and
// names Redis without its password.
func TestLoginSaysWhereTheRefreshTokenWent(t *testing.T) {
	dir := t.TempDir()
	redis := redistest.Start(t)
	// A user with a password, so that the URL holds one.
	if err := redis.Client().Do(t.Context(), "acl", "setuser", "proxyuser", "on", ">hunter2-redis-pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		store string
		says  []string
	}{
		{fmt.Sprintf("store: {type: file, path: %s}", filepath.Join(dir, "tokens.json")),
			[]string{"Logged in to redbooth. The refresh token is stored in " + filepath.Join(dir, "tokens.json") + ";"}},
		{fmt.Sprintf("store: {type: redis, url: redis://proxyuser:hunter2-redis-pw@%s/0, key_prefix: 'fleet-a:'}", redis.Addr()),
			[]string{"Logged in to redbooth. The refresh token is stored in Redis at redis://" + redis.Addr() + "/0;",
				"every proxy whose store.url names that Redis (and store.key_prefix fleet-a:)"}},
		{"store: {type: memory}",
			[]string{"Logged in to redbooth, but the refresh token was kept in memory only", "lost as this command exits",
				"Set store.type: file (store.path) or redis"}},
	} {
		l := startLoginWith(t, tt.store)
		if code := l.allow(t); code != 0 {
			t.Fatalf("%s: exit %d\n%s", tt.store, code, l.out)
		}
		out := l.out.String()
		for _, want := range tt.says {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the output does not say %q:\n%s", tt.store, want, out)
			}
		}
		if strings.Contains(out, "hunter2-redis-pw") || strings.Contains(out, "proxyuser") {
			t.Errorf("%s: the output names Redis with its user or password:\n%s", tt.store, out)
		}
	}
	// It went where it said.
	if _, err := os.Stat(filepath.Join(dir, "tokens.json")); err != nil {
		t.Errorf("the file store: %v", err)
	}
	if keys := redis.Client().Keys(t.Context(), "fleet-a:*").Val(); len(keys) == 0 {
		t.Error("nothing stored in Redis under fleet-a:")
	}
}

// Whether a browser can reach 127.0.0.1 in a container depends on where
// the browser runs, which login cannot know: it says so as a possibility
// (and a login in the same container completes), and as the likely cause
// only when nothing reached it.
func TestLoginInAContainer(t *testing.T) {
	marker := filepath.Join(t.TempDir(), ".dockerenv")
	os.WriteFile(marker, nil, 0o600)
	defer func(was string) { containerMarker = was }(containerMarker)
	const possibility = "this may run in a container (" // and no more than that
	store := "store: {type: memory}"

	t.Run("a browser in the same container", func(t *testing.T) {
		containerMarker = marker
		l := startLoginWith(t, store)
		if code := l.allow(t); code != 0 {
			t.Fatalf("exit %d\n%s", code, l.out)
		}
		port := l.redirectURI[strings.LastIndex(l.redirectURI, ":")+1 : strings.LastIndex(l.redirectURI, "/")]
		out := l.out.String()
		if !strings.Contains(out, possibility) || !strings.Contains(out, "If the browser runs outside it") ||
			!strings.Contains(out, "give --listen 0.0.0.0:"+port) || strings.Contains(out, "looks like a container") {
			t.Errorf("the note is not worded as a possibility, with what to do:\n%s", out)
		}
	})
	t.Run("nothing came back", func(t *testing.T) {
		containerMarker = marker
		l := startLoginWith(t, store)
		l.stop()
		host := strings.TrimSuffix(strings.TrimPrefix(l.redirectURI, "http://"), "/callback")
		want := "stopped before a redirect came back; nothing reached " + host + ": if the browser runs outside this container, publish the port and give --listen 0.0.0.0:"
		if code := <-l.exit; code != 1 || !strings.Contains(l.out.String(), want) {
			t.Errorf("exit %d, want 1 and %q:\n%s", code, want, l.out)
		}
		l.exit <- 1
	})
	t.Run("only a forged redirect came back", func(t *testing.T) {
		containerMarker = marker
		l := startLoginWith(t, store)
		resp, err := http.Get(l.redirectURI + "?state=forged&code=forged")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		l.stop()
		code := <-l.exit
		l.exit <- code
		if out := l.out.String(); code != 1 || !strings.Contains(out, "stopped before a redirect came back (1 whose state was not this login's ignored)\n") {
			t.Errorf("exit %d, want 1 with the ignored redirect counted and no container hint, as something did reach login:\n%s", code, out)
		}
	})
	t.Run("not a container", func(t *testing.T) {
		containerMarker = filepath.Join(t.TempDir(), "absent")
		l := startLoginWith(t, store)
		l.stop()
		code := <-l.exit
		l.exit <- code
		if out := l.out.String(); code != 1 || strings.Contains(out, "container") {
			t.Errorf("exit %d; outside a container, nothing about one:\n%s", code, out)
		}
	})
}

// whenWritten calls f once a write holds text.
type whenWritten struct {
	text string
	f    func()
	once sync.Once
}

func (w *whenWritten) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.text) {
		w.once.Do(w.f)
	}
	return len(p), nil
}

// login says why it failed while its redirect server still listens, as
// it did before its error went to the one exit path: the failure comes
// first, then the graceful shutdown (up to 5 s with a browser's
// connection open), not the other way round.
func TestLoginSaysItsFailureBeforeItStopsServing(t *testing.T) {
	var listening atomic.Int32 // 1: still listening when said, 2: not
	var redirect string
	l := startLoginTo(t, "store: {type: memory}", &whenWritten{text: "stopped before a redirect came back", f: func() {
		c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(redirect, "http://"), "/callback"))
		if err != nil {
			listening.Store(2)
			return
		}
		c.Close()
		listening.Store(1)
	}})
	redirect = l.redirectURI
	l.stop()
	if code := <-l.exit; code != 1 || listening.Load() != 1 {
		t.Errorf("exit %d; the failure was said while still listening: %v (0: never said)\n%s", code, listening.Load() == 1, l.out)
	}
	l.exit <- 1
}
