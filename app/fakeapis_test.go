package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/pki"
)

// With --tls-ca, the fake APIs speak HTTPS with a certificate from that
// CA for the name the client asks for (as the docker-compose forward
// profile calls https://api.redgifs.test), and only for names the CA
// permits.
func TestFakeAPIsServeHTTPSFromTheGivenCA(t *testing.T) {
	dir := t.TempDir()
	certPath, _, err := pki.WriteCA(dir, []string{"api.redgifs.test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- exit(pw, fakeapis(ctx, "127.0.0.1", 0, dir, Options{Stdout: pw, Stderr: pw}))
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr)
		if code := <-done; code != 0 {
			t.Errorf("fakeapis exited with %d", code)
		}
	})
	sc := bufio.NewScanner(pr)
	var addr string
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "redgifs" {
			addr = f[1]
			break
		}
	}
	if !strings.HasPrefix(addr, "https://127.0.0.1:") {
		t.Fatalf("redgifs is served at %q; want https://127.0.0.1:PORT", addr)
	}
	go io.Copy(io.Discard, pr)

	pem, _ := os.ReadFile(certPath)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	get := func(serverName string) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(addr + "/_fake/stats")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET /_fake/stats over TLS: %s", resp.Status)
		}
		return nil
	}
	if err := get("api.redgifs.test"); err != nil {
		t.Errorf("a client that trusts the CA, for api.redgifs.test: %v", err)
	}
	if err := get("api.elsewhere.test"); err == nil {
		t.Error("a handshake for a name the CA does not permit succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, pki.KeyFileName)); err != nil {
		t.Error(err)
	}
}
