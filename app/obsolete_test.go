package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config written for the release that had token.min_lifetime still
// loads (issue 21 item 1): check says, as a warning beside OK, that the
// key is no longer used and to remove it, once.
func TestCheckWarnsOfTheObsoleteMinLifetime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	yaml := "upstreams:\n  api:\n    target: https://api.example\n    token:\n      url: https://auth.example/token\n" +
		"      client_id: id\n      client_secret: s3cret-value\n      min_lifetime: 30s\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check", "--config", path)
	want := "warning: upstreams.api.token.min_lifetime: no longer used: a token is used only until it expires; remove it"
	if code != 0 || !strings.Contains(out, "OK, 1 upstream(s)") || strings.Count(errOut, want) != 1 {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant the warning %q once", code, out, errOut, want)
	}
}
