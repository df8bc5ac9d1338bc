package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// memStore is an in-test Store (package store imports auth, so its
// Memory cannot be used here).
type memStore struct {
	mu      sync.Mutex
	records map[string]Record
	saveErr error
	saves   []Record
}

func (m *memStore) Load(_ context.Context, name string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[name]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

func (m *memStore) Save(_ context.Context, name string, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saveErr != nil {
		return m.saveErr
	}
	if m.records == nil {
		m.records = map[string]Record{}
	}
	m.records[name] = r
	m.saves = append(m.saves, r)
	return nil
}

// rotatingEndpoint accepts only the newest refresh token and rotates it,
// as Redbooth does; it records every refresh token redeemed.
type rotatingEndpoint struct {
	mu        sync.Mutex
	current   string
	n         int
	redeemed  []string
	noRotate  bool
	clientIDs []string
}

func (e *rotatingEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	e.mu.Lock()
	defer e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	rt := r.PostForm.Get("refresh_token")
	e.redeemed = append(e.redeemed, rt)
	e.clientIDs = append(e.clientIDs, r.PostForm.Get("client_id"))
	if r.PostForm.Get("grant_type") != "refresh_token" || rt != e.current {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"The refresh token is invalid"}`)
		return
	}
	e.n++
	resp := map[string]any{"access_token": fmt.Sprint("a", e.n), "token_type": "bearer", "expires_in": 7200}
	if !e.noRotate {
		e.current = fmt.Sprint("r", e.n)
		resp["refresh_token"] = e.current
	}
	json.NewEncoder(w).Encode(resp)
}

func newRefreshGrant(t *testing.T, ep *rotatingEndpoint, st *memStore) (*RefreshGrant, *bytes.Buffer) {
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	logs := &bytes.Buffer{}
	l := logrus.New()
	l.Out = logs
	return &RefreshGrant{Name: "redbooth", Client: Client{TokenURL: srv.URL, ClientID: "id", ClientSecret: "sec"},
		InitialRefreshToken: "r0", Store: st, Log: l}, logs
}

func TestRefreshGrantRotatesAndSavesBeforeUse(t *testing.T) {
	ep := &rotatingEndpoint{current: "r0"}
	st := &memStore{}
	g, _ := newRefreshGrant(t, ep, st)
	if _, err := g.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		tok, err := g.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint("r", i)
		if tok.AccessToken != fmt.Sprint("a", i) || tok.RefreshToken != want {
			t.Fatalf("refresh %d: %v", i, tok)
		}
		// Saved by the time the token is handed out.
		if rec := st.records["redbooth"]; rec.RefreshToken != want || rec.AccessToken != tok.AccessToken || rec.Fingerprint == "" {
			t.Fatalf("refresh %d: stored %+v", i, rec)
		}
	}
	if got := strings.Join(ep.redeemed, ","); got != "r0,r1,r2" {
		t.Errorf("redeemed %s, want each refresh token once", got)
	}
}

func TestRefreshGrantWithoutRotationKeepsTheOldToken(t *testing.T) {
	ep := &rotatingEndpoint{current: "r0", noRotate: true}
	st := &memStore{}
	g, _ := newRefreshGrant(t, ep, st)
	g.Open(context.Background())
	for range 2 {
		if _, err := g.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st.records["redbooth"].RefreshToken != "r0" || strings.Join(ep.redeemed, ",") != "r0,r0" {
		t.Errorf("stored %+v, redeemed %v", st.records["redbooth"], ep.redeemed)
	}
}

func TestRefreshGrantDoesNotHandOutATokenItCouldNotSave(t *testing.T) {
	ep := &rotatingEndpoint{current: "r0"}
	st := &memStore{saveErr: errors.New("disk full")}
	g, _ := newRefreshGrant(t, ep, st)
	g.Open(context.Background())
	if tok, err := g.Token(context.Background()); err == nil || tok != nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, %v", tok, err)
	}
	// The rotated token is kept in memory and used for the next try.
	st.saveErr = nil
	if tok, err := g.Token(context.Background()); err != nil || tok.RefreshToken != "r2" {
		t.Fatalf("retry: %v, %v", tok, err)
	}
	if got := strings.Join(ep.redeemed, ","); got != "r0,r1" {
		t.Errorf("redeemed %s", got)
	}
}

func TestRefreshGrantInvalidGrantStopsUntilALogin(t *testing.T) {
	ep := &rotatingEndpoint{current: "someone-elses"}
	st := &memStore{}
	g, logs := newRefreshGrant(t, ep, st)
	clk := newFakeClock()
	g.Now = clk.Now
	g.Open(context.Background())
	for range 5 {
		_, err := g.Token(context.Background())
		if !errors.Is(err, ErrReauthorizationRequired) || !strings.Contains(err.Error(), "authproxy login redbooth") {
			t.Fatalf("got %v", err)
		}
	}
	if len(ep.redeemed) != 1 {
		t.Errorf("the dead refresh token was sent %d times, want 1", len(ep.redeemed))
	}
	if n := strings.Count(logs.String(), "reauthorization required"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs)
	}
	// `authproxy login` stores a new refresh token while the proxy runs.
	ep.current = "fresh"
	st.Save(context.Background(), "redbooth", Record{Fingerprint: g.Fingerprint(), RefreshToken: "fresh"})
	clk.Advance(time.Second)
	if tok, err := g.Token(context.Background()); err != nil || tok.AccessToken != "a1" {
		t.Fatalf("after login: %v, %v", tok, err)
	}
}

func TestRefreshGrantOpen(t *testing.T) {
	clk := newFakeClock()
	ep := &rotatingEndpoint{current: "stored"}
	t.Run("the stored refresh token wins over the config's", func(t *testing.T) {
		st := &memStore{}
		g, _ := newRefreshGrant(t, ep, st)
		st.Save(context.Background(), "redbooth", Record{Fingerprint: g.Fingerprint(), RefreshToken: "stored"})
		if tok, err := g.Open(context.Background()); tok != nil || err != nil {
			t.Fatalf("no access token stored, got %v, %v", tok, err)
		}
		if _, err := g.Token(context.Background()); err != nil || ep.redeemed[len(ep.redeemed)-1] != "stored" {
			t.Fatalf("redeemed %v, %v", ep.redeemed, err)
		}
	})
	t.Run("a still-valid stored access token is reused", func(t *testing.T) {
		st := &memStore{}
		g, _ := newRefreshGrant(t, ep, st)
		g.Now = clk.Now
		st.Save(context.Background(), "redbooth", Record{Fingerprint: g.Fingerprint(), RefreshToken: "r9", AccessToken: "a9",
			Expiry: clk.Now().Add(time.Hour), Updated: clk.Now().Add(-time.Hour)})
		tok, err := g.Open(context.Background())
		if err != nil || tok == nil || tok.AccessToken != "a9" {
			t.Fatalf("got %v, %v", tok, err)
		}
		c := NewCache(g, CacheOptions{Initial: tok, Now: clk.Now})
		if got, _ := c.Token(context.Background()); got != tok {
			t.Errorf("the cache did not start with the stored token")
		}
	})
	t.Run("another client's tokens are ignored", func(t *testing.T) {
		st := &memStore{}
		g, _ := newRefreshGrant(t, ep, st)
		st.Save(context.Background(), "redbooth", Record{Fingerprint: "another-client", RefreshToken: "theirs", AccessToken: "a",
			Expiry: time.Now().Add(time.Hour)})
		if tok, _ := g.Open(context.Background()); tok != nil {
			t.Fatal("another client's access token was reused")
		}
		g.Token(context.Background())
		if last := ep.redeemed[len(ep.redeemed)-1]; last != "r0" {
			t.Errorf("redeemed %q, want the config's r0", last)
		}
	})
}

func TestFingerprintIgnoresScopeOrder(t *testing.T) {
	fp := func(id string, scopes ...string) string {
		return Client{TokenURL: "u", ClientID: id, Scopes: scopes}.Fingerprint()
	}
	if fp("c", "a", "b") != fp("c", "b", "a") || fp("c") == fp("c2") {
		t.Error("fingerprints")
	}
}
