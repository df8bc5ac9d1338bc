package auth

import (
	"context"
	"testing"
	"time"
)

// Replicas share a token, and a restart reuses a stored one, only if
// everything it was fetched with matches: Identity's Client part. A
// reload keeps a cache only if nothing at all changed: its Settings part.
func TestIdentityCoversWhatMakesATokenDiffer(t *testing.T) {
	base := Settings{Name: "api", Target: "https://api", Client: Client{TokenURL: "https://a/token", ClientID: "id",
		ClientSecret: "s1", Scopes: []string{"read", "write"}, Params: map[string]string{"audience": "x", "resource": "y"}}}
	id := base.Identity()

	same := base
	same.Client.Scopes = []string{"write", "read"}
	if same.Identity() != id {
		t.Error("the identity depends on scope order")
	}
	rotated := base
	rotated.Client.ClientSecret = "s2"
	if got := rotated.Identity(); got.Client != id.Client || got.Settings == id.Settings {
		t.Errorf("a rotated secret: the client's tokens are still good (%v), but the cache is not kept (%v)",
			got.Client == id.Client, got.Settings == id.Settings)
	}
	for name, change := range map[string]func(*Settings){
		"url":      func(s *Settings) { s.Client.TokenURL = "https://b/token" },
		"client":   func(s *Settings) { s.Client.ClientID = "id2" },
		"scopes":   func(s *Settings) { s.Client.Scopes = []string{"read"} },
		"audience": func(s *Settings) { s.Client.Params = map[string]string{"audience": "z", "resource": "y"} },
	} {
		s := base
		change(&s)
		if got := s.Identity(); got.Client == id.Client || got.Settings == id.Settings {
			t.Errorf("changing the %s keeps the identity", name)
		}
	}
	for name, change := range map[string]func(*Settings){
		"target":         func(s *Settings) { s.Target = "https://elsewhere" },
		"refresh_before": func(s *Settings) { s.RefreshBefore = time.Minute },
		"grant":          func(s *Settings) { s.Grant = GrantRefreshToken },
		"seed":           func(s *Settings) { s.RefreshToken = "r" },
	} {
		s := base
		change(&s)
		if s.Identity().Settings == id.Settings {
			t.Errorf("changing the %s keeps the cache", name)
		}
	}
}

// keyRecorder is a Shared store that only notes the key it is asked for.
type keyRecorder struct {
	Shared
	key string
}

func (k *keyRecorder) LoadToken(_ context.Context, key string) (*SharedToken, error) {
	k.key = key
	return &SharedToken{ID: "t", Token: &Token{AccessToken: "a"}}, nil
}

func (k *keyRecorder) Changed(string) <-chan struct{} { return nil }

// The fleet shares a token under the upstream's name and its client.
func TestSharedKeyIsNameAndClient(t *testing.T) {
	s := Settings{Name: "api", Client: Client{TokenURL: "https://a/token", ClientID: "id"}}
	rec := &keyRecorder{}
	c, err := NewSource(context.Background(), s, Options{Shared: rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "api:" + s.Identity().Client; rec.key != want {
		t.Errorf("shared under %q, want %q", rec.key, want)
	}
}
