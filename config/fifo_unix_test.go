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

	"github.com/authproxy/authproxy/pki"
)

// A named pipe where a key or certificate file should be is a problem
// naming the key. Opened to see whether it can be read, it blocked the
// config's loading (serve, check, a reload) until a writer came.
func TestAFileThatIsANamedPipeIsAProblem(t *testing.T) {
	dir := clientAuthDir(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	err := loadsAtAll(t, "the named pipe", func() error {
		_, err := loadToken(t, dir, "      auth_method: private_key_jwt\n      private_key_file: pipe\n")
		return err
	})
	want := "upstreams.api.token.private_key_file: " + filepath.Join(dir, "pipe") + " is not a regular file (a named pipe)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %q", err, want)
	}
}

// A named pipe as the forward proxy's CA certificate or key is a problem
// naming the key. As the certificate it was looked at, and then opened
// all the same by pki.LoadCA, which blocked the config's loading.
func TestACAFileThatIsANamedPipeIsAProblem(t *testing.T) {
	for _, key := range []string{"ca_cert_file", "ca_key_file"} {
		t.Run(key, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := pki.WriteCA(dir, []string{"example.com", "example.net"}, time.Now()); err != nil {
				t.Fatal(err)
			}
			pipe := filepath.Join(dir, "pipe")
			if err := syscall.Mkfifo(pipe, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			forward := strings.Replace(forwardOn, key+": "+map[string]string{"ca_cert_file": "ca.pem", "ca_key_file": "ca-key.pem"}[key], key+": pipe", 1)
			path := filepath.Join(dir, "proxy.yaml")
			if err := os.WriteFile(path, []byte(forwardUpstreams+forward), 0o600); err != nil {
				t.Fatal(err)
			}
			err := loadsAtAll(t, "the named pipe", func() error {
				_, err := Load(path, Options{NoEnvOverrides: true})
				return err
			})
			want := "forward_proxy." + key + ": " + pipe + " is not a regular file (a named pipe)"
			if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "forward_proxy.") != 1 {
				t.Fatalf("got %v\nwant %q, once, and no other problem", err, want)
			}
		})
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
	path := writeSecretFileConfig(t, dir, "pipe")
	err := loadsAtAll(t, "the named pipe", func() error {
		_, err := Load(path, Options{NoEnvOverrides: true})
		return err
	})
	want := "upstreams.api.token.client_secret_file: " + pipe + " is empty"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %q", err, want)
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
	cfg, err := Load(writeSecretFileConfig(t, dir, "/proc/self/fd/"+strconv.Itoa(int(r.Fd()))), Options{NoEnvOverrides: true})
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
	path := writeSecretFileConfig(t, t.TempDir(), "/dev/zero")
	err := loadsAtAll(t, "/dev/zero", func() error {
		_, err := Load(path, Options{NoEnvOverrides: true})
		return err
	})
	want := "upstreams.api.token.client_secret_file: /dev/zero is not a regular file (a device)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %q", err, want)
	}
}

// loadsAtAll returns load's error, and fails the test if load has not
// returned 10 s after it began: it hangs on what (it is left running, as
// nothing can stop a blocked open or an endless read).
func loadsAtAll(t *testing.T, what string, load func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- load() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("loading the config still blocked on %s after 10s", what)
		return nil
	}
}
