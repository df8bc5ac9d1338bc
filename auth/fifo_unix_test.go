//go:build unix

package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/pki"
)

// A named pipe (or a device) where a token, key or certificate file should
// be fails at once, naming the file. Opening a FIFO blocks until a writer
// comes, and a token request blocked there is one the cache's timeout
// cannot end: the upstream's single shared fetch never returned, and every
// later request waited on it until a restart.
func TestFilesThatAreNotRegularFailAtOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for name, read := range map[string]func() error{
		"ReadTokenFile":   func() error { _, err := ReadTokenFile(fifo); return err },
		"AssertionFile":   func() error { _, err := AssertionFile(fifo).Assertion(); return err },
		"pki.ReadKeyFile": func() error { _, _, err := pki.ReadKeyFile(fifo); return err },
		"client certificate": func() error {
			_, err := pki.NewClientCertificate(pki.TLSFiles{CertFile: fifo, KeyFile: fifo})
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v", name, err)
			}
			if strings.Contains(name, "File") && name != "pki.ReadKeyFile" && !errors.Is(err, ErrTokenFile) {
				t.Errorf("%s: not marked as an unusable token file: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: still blocked on the named pipe after 10s", name)
			// Let the blocked reader go: writers open and close the pipe
			// until it has read what it wanted (EOF each time).
			for blocked := true; blocked; {
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				select {
				case <-done:
					blocked = false
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}
}
