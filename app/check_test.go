package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
)

// credentialError names the key of the problem building met, and only
// that one: a config with another credential problem (here a secret too
// short for HS256) must not hide a build error of a different cause
// behind it.
func TestCredentialErrorNamesOnlyTheCauseOfTheBuildError(t *testing.T) {
	cfg := &config.Config{Upstreams: []config.Upstream{{Name: "two", Token: config.Token{
		AuthMethod: string(auth.ClientSecretJWT), ClientSecret: "ShortS3cretABC",
	}}}}
	problems := credentialProblems(cfg.Upstreams[0])
	if len(problems) != 1 {
		t.Fatalf("want the short secret as the one problem, got %v", problems)
	}
	built := errors.New(`upstream "two": client assertion: ` + problems[0].Message)
	if err := credentialError(cfg, built); err == nil || !strings.Contains(err.Error(), "upstreams.two.token.client_secret: the client secret is 14 bytes") {
		t.Errorf("the build error of the short secret: %v", err)
	}
	other := errors.New(`upstream "two": something else went wrong`)
	if err := credentialError(cfg, other); err != other {
		t.Errorf("a build error of another cause became %v", err)
	}
}
