//go:build unix

package config

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A named pipe where a key or certificate file should be is a problem
// naming the key. Opened to see whether it can be read, it blocked the
// config's loading (serve, check, a reload) until a writer came.
func TestAFileThatIsANamedPipeIsAProblem(t *testing.T) {
	dir := clientAuthDir(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := loadToken(t, dir, "      auth_method: private_key_jwt\n      private_key_file: pipe\n")
		done <- err
	}()
	select {
	case err := <-done:
		want := "upstreams.api.token.private_key_file: " + filepath.Join(dir, "pipe") + " is not a regular file (a named pipe)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v\nwant %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading the config still blocked on the named pipe after 10s")
	}
}
