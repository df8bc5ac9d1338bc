package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/authproxy/authproxy/pki"
)

// Building a source blames the setting at fault with a *SettingError,
// whose message is the cause's own, so that a caller names its key
// without reading the words.
func TestNewSourceBlamesTheSetting(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notAKey := filepath.Join(dir, "not-a-key.pem")
	if err := os.WriteFile(notAKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Settings{Name: "api", Target: "http://127.0.0.1:1",
		Client: Client{TokenURL: "http://127.0.0.1:1/token", ClientID: "c", ClientSecret: "s"}}
	for _, tt := range []struct {
		name string
		edit func(*Settings)
		want Setting
	}{
		{"private key file", func(s *Settings) {
			s.Client.AuthMethod, s.Client.ClientSecret, s.PrivateKeyFile = PrivateKeyJWT, "", missing
		}, SettingPrivateKeyFile},
		{"secret too short", func(s *Settings) { s.Client.AuthMethod = ClientSecretJWT }, SettingClientSecret},
		{"token endpoint TLS", func(s *Settings) { s.TLS = pki.TLSFiles{CAFile: missing} }, SettingTLS},
		{"DPoP key file", func(s *Settings) { s.DPoPKeyFile = notAKey }, SettingDPoPKeyFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			tt.edit(&s)
			_, err := NewSource(context.Background(), s, Options{})
			var blamed *SettingError
			if !errors.As(err, &blamed) || blamed.Setting != tt.want {
				t.Fatalf("NewSource: %v; want a *SettingError blaming %s", err, tt.want)
			}
			if blamed.Error() != blamed.Err.Error() {
				t.Errorf("its message %q is not its cause's %q", blamed.Error(), blamed.Err.Error())
			}
		})
	}
}
