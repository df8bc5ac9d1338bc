package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/store"
)

// strictRotation is a token endpoint that rotates the refresh token on
// every redemption and refuses a redeemed one, counting redemptions.
type strictRotation struct {
	mu       sync.Mutex
	current  string
	n        int
	redeemed map[string]int
}

func (e *strictRotation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	e.mu.Lock()
	defer e.mu.Unlock()
	rt := r.PostForm.Get("refresh_token")
	e.redeemed[rt]++
	w.Header().Set("Content-Type", "application/json")
	if rt != e.current {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
		return
	}
	e.n++
	e.current = fmt.Sprint("r", e.n)
	json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprint("a", e.n), "refresh_token": e.current, "expires_in": 7200})
}

// TestRefreshGrantsSharingAFileStoreRedeemEachRefreshTokenOnce: two
// grants on one store file, as the proxy and `authproxy token` are (each
// its own File: its own lock file descriptor, as in two processes),
// refresh at the same moments. Each refresh token must be redeemed once:
// whoever comes second takes up the other's rotation.
func TestRefreshGrantsSharingAFileStoreRedeemEachRefreshTokenOnce(t *testing.T) {
	ep := &strictRotation{current: "r0", redeemed: map[string]int{}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "tokens.json")
	grant := func() *auth.RefreshGrant {
		g := &auth.RefreshGrant{Name: "redbooth", Client: auth.Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "s3cret"},
			InitialRefreshToken: "r0", Store: &store.File{Path: path}}
		if _, err := g.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, b := grant(), grant()
	for round := range 20 {
		var wg sync.WaitGroup
		for _, g := range []*auth.RefreshGrant{a, b} {
			wg.Go(func() {
				if _, err := g.Token(context.Background()); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
	}
	for rt, n := range ep.redeemed {
		if n != 1 {
			t.Errorf("refresh token %s redeemed %d times", rt, n)
		}
	}
	if len(ep.redeemed) < 20 {
		t.Errorf("%d redemptions in 20 rounds", len(ep.redeemed))
	}
}
