package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/store"
)

// credentialError names the key of the problem building met, and only
// that one: a config with another credential problem (here a secret too
// short for HS256) must not hide a build error of a different cause
// behind it. Which key is at fault is what auth's error says
// (auth.SettingError), not its words.
func TestCredentialErrorNamesOnlyTheCauseOfTheBuildError(t *testing.T) {
	cfg := &config.Config{Upstreams: []config.Upstream{{Name: "two", Target: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Token: config.Token{
		URL: "http://127.0.0.1:1/token", ClientID: "c", AuthMethod: string(auth.ClientSecretJWT), ClientSecret: "ShortS3cretABC",
	}}}}
	u := cfg.Upstreams[0]
	problems := credentialProblems(u)
	if len(problems) != 1 {
		t.Fatalf("want the short secret as the one problem, got %v", problems)
	}
	_, built := auth.NewSource(context.Background(), tokenSettings(u), auth.Options{Store: &store.Memory{}})
	if err := credentialError(cfg, u, built); err == nil || !strings.Contains(err.Error(), "upstreams.two.token.client_secret: the client secret is 14 bytes") {
		t.Errorf("the build error of the short secret (%v): %v", built, err)
	}
	// The same words, but not blamed on a setting: not the config's.
	words := errors.New(`upstream "two": client assertion: ` + problems[0].Message)
	if err := credentialError(cfg, u, words); err != words {
		t.Errorf("an error without auth's blame became %v", err)
	}
	other := fmt.Errorf(`upstream "two": %w`, &auth.SettingError{Setting: auth.SettingPrivateKeyFile, Err: errors.New("something else went wrong")})
	if err := credentialError(cfg, u, other); err != other {
		t.Errorf("a build error of another cause became %v", err)
	}
}

// Upstreams that share the setting at fault (one secret, one key file)
// fail alike: serve's start names each of them, as check would, so that
// one start shows every place to fix, not one a run.
func TestCredentialErrorNamesEveryUpstreamSharingTheCause(t *testing.T) {
	tok := config.Token{URL: "http://127.0.0.1:1/token", ClientID: "c", AuthMethod: string(auth.ClientSecretJWT), ClientSecret: "ShortS3cretABC"}
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	good := tok
	good.ClientSecret = config.Secret(strings.Repeat("LongEnoughS3cret", 4))
	cfg := &config.Config{Upstreams: []config.Upstream{
		{Name: "one", Target: target, Token: tok},
		{Name: "two", Target: target, Token: tok},
		{Name: "three", Target: target, Token: good},
	}}
	u := cfg.Upstreams[1]
	_, built := auth.NewSource(context.Background(), tokenSettings(u), auth.Options{Store: &store.Memory{}})
	err := credentialError(cfg, u, built)
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"upstreams.one.token.client_secret", "upstreams.two.token.client_secret"} {
		if !strings.Contains(err.Error(), key+": the client secret is 14 bytes") {
			t.Errorf("%v does not name %s", err, key)
		}
	}
	if strings.Contains(err.Error(), "upstreams.three") {
		t.Errorf("%v names an upstream that builds", err)
	}
}

// One bad file at two keys (an upstream's own tls and its token
// endpoint's, or another upstream's) fails them alike: serve names every
// key it sits at, as check does.
func TestCredentialErrorNamesEveryKeyOfTheSameBadFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	https := &url.URL{Scheme: "https", Host: "127.0.0.1:1"}
	tok := config.Token{URL: "https://127.0.0.1:1/token", ClientID: "c", AuthMethod: string(auth.ClientSecretPost), ClientSecret: "s"}
	api, zed := config.Upstream{Name: "api", Target: https, Token: tok, TLS: config.TLS{CAFile: bad}}, config.Upstream{Name: "zed", Target: https, Token: tok, TLS: config.TLS{CAFile: bad}}
	api.Token.TLS = config.TLS{CAFile: bad}
	cfg := &config.Config{Upstreams: []config.Upstream{api, zed}}
	_, built := auth.NewSource(context.Background(), tokenSettings(api), auth.Options{Store: &store.Memory{}})
	err := credentialError(cfg, api, built)
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"upstreams.api.token.tls:", "upstreams.api.tls:", "upstreams.zed.tls:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("does not name %s:\n%v", key, err)
		}
	}
}

// Each setting auth blames is a key under the upstream's token, and the
// upstream's own tls files are its tls.
func TestCredentialKey(t *testing.T) {
	blame := func(s auth.Setting) error {
		return fmt.Errorf("upstream %q: %w", "api", &auth.SettingError{Setting: s, Err: errors.New("bad")})
	}
	for err, want := range map[error]string{
		blame(auth.SettingPrivateKeyFile): "upstreams.api.token.private_key_file",
		blame(auth.SettingSigningAlg):     "upstreams.api.token.signing_alg",
		blame(auth.SettingClientSecret):   "upstreams.api.token.client_secret",
		blame(auth.SettingTLS):            "upstreams.api.token.tls",
		blame(auth.SettingDPoPKeyFile):    "upstreams.api.token.dpop.private_key_file",
		blame(auth.SettingDPoPSigningAlg): "upstreams.api.token.dpop.signing_alg",
		blame("Unknown"):                  "",
		fmt.Errorf("upstream %q: %w", "api", upstreamTLSError{errors.New("bad")}): "upstreams.api.tls",
		errors.New("upstreams.api.token.private_key_file: bad"):                   "",
	} {
		if got := credentialKey("api", err); got != want {
			t.Errorf("credentialKey(%v) = %q, want %q", err, got, want)
		}
	}
}
