package app

import (
	"testing"

	"github.com/authproxy/authproxy/config"
)

// Replicas share a token only if everything it was fetched with matches.
func TestSharedKeyCoversWhatMakesATokenDiffer(t *testing.T) {
	base := config.Upstream{Name: "api", Token: config.Token{URL: "https://a/token", ClientID: "id",
		Scopes: []string{"read", "write"}, Params: map[string]string{"audience": "x", "resource": "y"}}}
	key := sharedKey(base)
	same := base
	same.Token.Scopes = []string{"write", "read"}
	same.Token.ClientSecret = "rotated" // the same client's token is still good
	if sharedKey(same) != key {
		t.Error("the key depends on scope order or the secret")
	}
	for name, change := range map[string]func(*config.Upstream){
		"name":     func(u *config.Upstream) { u.Name = "other" },
		"url":      func(u *config.Upstream) { u.Token.URL = "https://b/token" },
		"client":   func(u *config.Upstream) { u.Token.ClientID = "id2" },
		"scopes":   func(u *config.Upstream) { u.Token.Scopes = []string{"read"} },
		"audience": func(u *config.Upstream) { u.Token.Params = map[string]string{"audience": "z", "resource": "y"} },
	} {
		u := base
		u.Token.Params = map[string]string{"audience": "x", "resource": "y"}
		change(&u)
		if sharedKey(u) == key {
			t.Errorf("changing the %s keeps the key", name)
		}
	}
}
