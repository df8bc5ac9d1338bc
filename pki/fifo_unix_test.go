//go:build unix

package pki

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A named pipe where the CA's certificate or key should be is refused,
// as ReadFile refuses one for every other key and certificate. Opened,
// it blocked LoadCA, and with it authproxy check, serve and ca create,
// until a writer came.
func TestLoadCARefusesANamedPipe(t *testing.T) {
	for _, which := range []string{"certificate", "key"} {
		t.Run(which, func(t *testing.T) {
			dir := writeCA(t, "api.example.com")
			pipe := filepath.Join(dir, "pipe")
			if err := syscall.Mkfifo(pipe, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			cert, key := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
			if which == "certificate" {
				cert = pipe
			} else {
				key = pipe
			}
			done := make(chan error, 1)
			go func() {
				_, err := LoadCA(cert, key)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				// A guard, not a timing assertion: nothing can stop a
				// blocked open, so it is left running.
				t.Fatalf("LoadCA still blocked on the named pipe as its %s after 10s", which)
			}
			want := "read " + pipe + ": not a regular file (a named pipe)"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v\nwant %q", err, want)
			}
		})
	}
}
