package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// token's help says which token it gets for each grant: a stored one
// only where the store holds access tokens, which it does not for a
// client-credentials upstream on a file or memory store.
func TestTokenHelpSaysWhatIsStored(t *testing.T) {
	code, out, _ := runCLI(t, "token", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"grant_type: refresh_token: the access token in the store while it is valid",
		"every other grant: a new token from the token endpoint, on every run; it is not stored",
		"a running serve does not see it and keeps its own",
		"store.type: redis",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("the help does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(help, "the stored one while it is valid") {
		t.Errorf("the help says every grant's token is stored:\n%s", out)
	}
}

// What the help says, run: with a file store, each run for a
// client-credentials upstream asks the token endpoint and stores nothing;
// one for a refresh-token upstream takes the access token the first run
// stored.
func TestTokenStoresOnlyWhatTheHelpSays(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		grant := r.PostForm.Get("grant_type")
		mu.Lock()
		asked[grant]++
		n := asked[grant]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "%s-access-%d", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rotated-%d"}`, grant, n, n)
	}))
	defer ts.Close()
	dir := t.TempDir()
	storePath := filepath.Join(dir, "tokens.json")
	path := writeConfig(t, fmt.Sprintf(`
store: {type: file, path: %s}
upstreams:
  cc:
    target: http://127.0.0.1:1
    token: {url: %s/token, client_id: c, client_secret: s}
  rt:
    target: http://127.0.0.1:1
    token: {grant_type: refresh_token, url: %s/token, client_id: c, refresh_token: seed}
`, storePath, ts.URL, ts.URL))
	for range 2 {
		if code, out, errOut := runCLI(t, "token", "cc", "--config", path); code != 0 {
			t.Fatalf("token cc: exit %d\n%s%s", code, out, errOut)
		}
		if code, out, errOut := runCLI(t, "token", "rt", "--config", path); code != 0 {
			t.Fatalf("token rt: exit %d\n%s%s", code, out, errOut)
		}
	}
	if asked["client_credentials"] != 2 || asked["refresh_token"] != 1 {
		t.Errorf("token endpoint asked %v; want client_credentials twice (nothing stored), refresh_token once", asked)
	}
	stored, _ := os.ReadFile(storePath)
	if strings.Contains(string(stored), "client_credentials-access") {
		t.Errorf("a client-credentials token was stored: %s", stored)
	}
}
