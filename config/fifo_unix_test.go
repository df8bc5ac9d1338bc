//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strconv"
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

// A secret file that is a named pipe with no writer is a problem naming
// the key, not a hang; one with a writer (a shell's <(...)) is read.
func TestASecretFileThatIsANamedPipe(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: pipe", 1)
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte(file), 0o600)
	done := make(chan error, 1)
	go func() {
		_, err := Load(path, Options{NoEnvOverrides: true})
		done <- err
	}()
	select {
	case err := <-done:
		want := "upstreams.api.token.client_secret_file: " + pipe + " is empty"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v\nwant %q", err, want)
		}
	case <-time.After(10 * time.Second):
		// Unblock the loader so that the test ends.
		if f, err := os.OpenFile(pipe, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("loading the config still blocked on the named pipe after 10s")
	}

	// A pipe whose writer wrote the secret and left, as a shell's
	// <(echo ...) does: the secret it wrote.
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return // no /proc to name a pipe by
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.WriteString("from-pipe\n")
	w.Close()
	file = strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: /proc/self/fd/"+strconv.Itoa(int(r.Fd())), 1)
	os.WriteFile(path, []byte(file), 0o600)
	cfg, err := Load(path, Options{NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Token.ClientSecret.Reveal(); got != "from-pipe" {
		t.Errorf("secret %q, want from-pipe", got)
	}
}

// A device where a secret file should be (/dev/zero, /dev/urandom) is a
// problem naming the key; reading it whole never ended.
func TestASecretFileThatIsADevice(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	dir := t.TempDir()
	file := strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: /dev/zero", 1)
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte(file), 0o600)
	done := make(chan error, 1)
	go func() {
		_, err := Load(path, Options{NoEnvOverrides: true})
		done <- err
	}()
	select {
	case err := <-done:
		want := "upstreams.api.token.client_secret_file: /dev/zero is not a regular file (a device)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v\nwant %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading the config still reading /dev/zero after 10s")
	}
}
