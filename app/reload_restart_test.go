package app

import (
	"slices"
	"testing"
	"time"

	"github.com/authproxy/authproxy/config"
)

// A reload says which changes wait for a restart, and only those: the
// limits that the handler reads per request apply at once.
func TestRestartOnlyNamesWhatAReloadCannotApply(t *testing.T) {
	base := config.Config{Listen: "127.0.0.1:8080", Limits: config.Limits{MaxRequestBody: 1, ReplayMemory: 1, BodyReadTimeout: time.Second, IdleTimeout: time.Minute}}
	applied := base
	applied.Limits.MaxRequestBody, applied.Limits.ReplayMemory, applied.Limits.BodyReadTimeout = 2, 2, 2*time.Second
	if got := restartOnly(&base, &applied); len(got) != 0 {
		t.Errorf("limits applied at once reported as needing a restart: %v", got)
	}
	later := base
	later.Listen, later.Limits.IdleTimeout, later.Log.Level = ":9000", time.Hour, "debug"
	if got, want := restartOnly(&base, &later), []string{"listen", "limits.idle_timeout", "log"}; !slices.Equal(got, want) {
		t.Errorf("restartOnly = %v, want %v", got, want)
	}
}
