package pki

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeclock"
	"github.com/authproxy/authproxy/internal/testpki"
)

// mtlsServer answers every request with the common name of the client
// certificate it verified; it refuses a handshake without one.
func mtlsServer(t *testing.T, clientCA *testpki.CA) (*httptest.Server, *testpki.CA) {
	t.Helper()
	serverCA := testpki.NewCA(t, "server CA")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{serverCA.Loopback(t).TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA.Pool(),
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, serverCA
}

type certFiles struct {
	dir, cert, key, ca string
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCertFiles(t *testing.T, serverCA *testpki.CA, first testpki.Pair) certFiles {
	dir := t.TempDir()
	f := certFiles{dir: dir, cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), ca: filepath.Join(dir, "ca.crt")}
	writeFile(t, f.ca, serverCA.PEM)
	writeFile(t, f.cert, first.CertPEM)
	writeFile(t, f.key, first.KeyPEM)
	return f
}

func clientCert(t *testing.T, ca *testpki.CA, cn string) testpki.Pair {
	return ca.Issue(t, testpki.Leaf{Subject: pkix.Name{CommonName: cn}})
}

// A rotation written file by file, with a window where the certificate is
// new and the key old, and one where the key is half-written, is picked up
// once whole, and no request fails on the way.
func TestClientCertificateRotationWithoutFailedHandshake(t *testing.T) {
	clientCA := testpki.NewCA(t, "client CA")
	srv, serverCA := mtlsServer(t, clientCA)
	v1, v2 := clientCert(t, clientCA, "v1"), clientCert(t, clientCA, "v2")
	files := newCertFiles(t, serverCA, v1)
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

	cfg, cc, err := NewTLSConfig(TLSFiles{CAFile: files.ca, CertFile: files.cert, KeyFile: files.key, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: cc.Transport(&http.Transport{TLSClientConfig: cfg})}
	get := func(want string) {
		t.Helper()
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("request failed (want %s presented): %v", want, err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != want {
			t.Fatalf("server saw certificate %q, want %q", b, want)
		}
	}
	// handshake makes the request on a new connection, so that the
	// certificate is asked for while the files are as they are now.
	handshake := func(want string) {
		t.Helper()
		client.CloseIdleConnections()
		get(want)
	}
	get("v1")

	// cert-manager writes the certificate first: the key on disk no
	// longer matches it.
	writeFile(t, files.cert, v2.CertPEM)
	clk.Advance(time.Second)
	handshake("v1")
	if _, err := cc.Reload(); !errors.Is(err, ErrTLSFiles) || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("Reload with a mismatched pair: %v", err)
	}
	assertNoMaterial(t, errString(cc.Reload()), v1.KeyPEM)
	assertNoMaterial(t, errString(cc.Reload()), v2.KeyPEM)

	// Then the key, which a reader may catch half-written.
	writeFile(t, files.key, v2.KeyPEM[:len(v2.KeyPEM)/2])
	clk.Advance(time.Second)
	handshake("v1")

	writeFile(t, files.key, v2.KeyPEM)
	// Within CheckEvery the files are not looked at.
	handshake("v1")
	clk.Advance(time.Second)
	// The kept-alive connection presented v1; the next request after the
	// rotation goes on a new one.
	get("v2")
	if got := cc.Certificate().Leaf.Subject.CommonName; got != "v2" {
		t.Fatalf("Certificate() is %s", got)
	}
}

func errString(_ bool, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Requests that run while the files rotate all succeed, and the last
// certificate written is the one presented at the end.
func TestClientCertificateRotationUnderLoad(t *testing.T) {
	clientCA := testpki.NewCA(t, "client CA")
	srv, serverCA := mtlsServer(t, clientCA)
	pairs := []testpki.Pair{clientCert(t, clientCA, "v0"), clientCert(t, clientCA, "v1"), clientCert(t, clientCA, "v2"), clientCert(t, clientCA, "v3")}
	files := newCertFiles(t, serverCA, pairs[0])
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg, cc, err := NewTLSConfig(TLSFiles{CAFile: files.ca, CertFile: files.cert, KeyFile: files.key, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: cc.Transport(&http.Transport{TLSClientConfig: cfg})}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	progress := make(chan struct{}, 1024)
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(srv.URL)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	// Between each step of the rotation, let requests go through.
	requests := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-progress:
			case err := <-errs:
				t.Fatalf("a request failed during rotation: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("no request completed within 10s")
			}
		}
	}
	for _, p := range pairs[1:] {
		requests(10)
		writeFile(t, files.cert, p.CertPEM)
		clk.Advance(time.Second)
		requests(10)
		writeFile(t, files.key, p.KeyPEM)
		clk.Advance(time.Second)
	}
	requests(10)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a request failed during rotation: %v", err)
	}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "v3" {
		t.Fatalf("after rotation the server saw %q, want v3", b)
	}
}

// A certificate file caught mid-write after its leaf, while the key on
// disk already matches that leaf (written first, or unchanged: cert-manager
// keeps the key with rotationPolicy: Never), holds a whole pair and a cut
// chain. Taken, it would be presented without its intermediate, which the
// server needs to verify it, until the next look at the files.
func TestClientCertificateWithAHalfWrittenChainIsNotTaken(t *testing.T) {
	ca := testpki.NewCA(t, "client CA")
	intermediate := testpki.NewCA(t, "intermediate").PEM // stands for the chain after the leaf
	v1, v2 := clientCert(t, ca, "v1"), clientCert(t, ca, "v2")
	files := newCertFiles(t, ca, v1)
	cc, err := NewClientCertificate(TLSFiles{CertFile: files.cert, KeyFile: files.key})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, files.key, v2.KeyPEM)
	writeFile(t, files.cert, append(slices.Clone(v2.CertPEM), intermediate[:len(intermediate)/2]...))
	if changed, err := cc.Reload(); changed || !errors.Is(err, ErrTLSFiles) || !strings.Contains(err.Error(), "half-written") {
		t.Fatalf("Reload with the chain cut short: changed %v, %v", changed, err)
	}
	if got := cc.Certificate().Leaf.Subject.CommonName; got != "v1" {
		t.Fatalf("in use with the chain cut short: %s", got)
	}
	writeFile(t, files.cert, append(slices.Clone(v2.CertPEM), intermediate...))
	if changed, err := cc.Reload(); !changed || err != nil {
		t.Fatalf("Reload once whole: %v, %v", changed, err)
	}
	if c := cc.Certificate(); c.Leaf.Subject.CommonName != "v2" || len(c.Certificate) != 2 {
		t.Fatalf("once whole: %s with %d certificates", c.Leaf.Subject.CommonName, len(c.Certificate))
	}
}

// A Kubernetes secret volume rotates by swapping a "..data" symlink to a
// new directory: the files' paths stay, their targets change.
func TestClientCertificateFollowsSymlinkSwap(t *testing.T) {
	ca := testpki.NewCA(t, "client CA")
	dir := t.TempDir()
	writeVersion := func(name string, p testpki.Pair) {
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o700)
		writeFile(t, filepath.Join(d, "tls.crt"), p.CertPEM)
		writeFile(t, filepath.Join(d, "tls.key"), p.KeyPEM)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..v1", clientCert(t, ca, "v1"))
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	cc, err := NewClientCertificate(TLSFiles{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := cc.Reload(); changed || err != nil {
		t.Fatalf("Reload without a change: %v, %v", changed, err)
	}
	writeVersion("..v2", clientCert(t, ca, "v2"))
	if changed, err := cc.Reload(); !changed || err != nil {
		t.Fatalf("Reload after the swap: %v, %v", changed, err)
	}
	if got := cc.Certificate().Leaf.Subject.CommonName; got != "v2" {
		t.Fatalf("after the swap: %s", got)
	}
}

func TestNewTLSConfigRefusals(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	a, b := clientCert(t, ca, "a"), clientCert(t, ca, "b")
	dir := t.TempDir()
	path := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	caFile, empty := path("ca.pem", ca.PEM), path("empty.pem", []byte("no pem here"))
	aCert, bKey := path("a.crt", a.CertPEM), path("b.key", b.KeyPEM)
	encrypted := path("encrypted.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("0123456789")}))
	legacy := path("legacy.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("0123456789")}))
	for _, tc := range []struct {
		name  string
		files TLSFiles
		want  string
	}{
		{"missing ca_file", TLSFiles{CAFile: filepath.Join(dir, "nope.pem")}, "read ca_file " + filepath.Join(dir, "nope.pem") + ": no such file"},
		{"ca_file without certificates", TLSFiles{CAFile: empty}, "holds no PEM certificate"},
		{"cert without key", TLSFiles{CAFile: caFile, CertFile: aCert}, "cert_file and key_file go together"},
		{"key of another certificate", TLSFiles{CertFile: aCert, KeyFile: bKey}, "private key does not match public key"},
		{"key file is a certificate", TLSFiles{CertFile: aCert, KeyFile: aCert}, "cert_file " + aCert + " and key_file " + aCert},
		// tls.X509KeyPair says only "failed to parse private key".
		{"encrypted key", TLSFiles{CertFile: aCert, KeyFile: encrypted}, "key_file " + encrypted + " is encrypted; write it unencrypted"},
		{"encrypted legacy key", TLSFiles{CertFile: aCert, KeyFile: legacy}, "key_file " + legacy + " is encrypted; write it unencrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewTLSConfig(tc.files)
			if !errors.Is(err, ErrTLSFiles) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			assertNoMaterial(t, err.Error(), b.KeyPEM)
		})
	}
	cfg, cc, err := NewTLSConfig(TLSFiles{CAFile: caFile, ServerName: "api.internal"})
	if err != nil || cc != nil || cfg.RootCAs == nil || cfg.ServerName != "api.internal" || cfg.InsecureSkipVerify {
		t.Fatalf("CA-only config: %+v, %v, %v", cfg, cc, err)
	}
}

// A changed pair that is still not taken at the next look is said, once
// per content of the files: a pair that stays wrong (a key that never
// matches) would otherwise be presented, old, in silence until it
// expires. One look at a rotation half way through says nothing.
func TestClientCertificateSaysOnceWhyAChangedPairIsRefused(t *testing.T) {
	ca := testpki.NewCA(t, "client CA")
	v1, v2, v3 := clientCert(t, ca, "v1"), clientCert(t, ca, "v2"), clientCert(t, ca, "v3")
	files := newCertFiles(t, ca, v1)
	var refused []error
	cc, err := NewClientCertificate(TLSFiles{CertFile: files.cert, KeyFile: files.key, OnRefused: func(err error) { refused = append(refused, err) }})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, files.cert, v2.CertPEM) // v2's certificate, v1's key: they do not match
	for range 3 {
		cc.Reload()
	}
	if len(refused) != 1 || !errors.Is(refused[0], ErrTLSFiles) {
		t.Fatalf("after three looks at one wrong pair: %v, want one refusal", refused)
	}
	writeFile(t, files.cert, v3.CertPEM) // another wrong pair: a rotation under way, for one look
	cc.Reload()
	if len(refused) != 1 {
		t.Fatalf("one look at a pair half way through a rotation: %d refusals, want still 1", len(refused))
	}
	cc.Reload()
	if len(refused) != 2 {
		t.Fatalf("a second wrong pair: %d refusals, want 2", len(refused))
	}
	writeFile(t, files.key, v3.KeyPEM)
	if changed, err := cc.Reload(); !changed || err != nil || len(refused) != 2 {
		t.Fatalf("the right pair: changed %v, %v, %d refusals", changed, err, len(refused))
	}
	for _, e := range refused {
		if strings.Contains(e.Error(), "PRIVATE KEY") {
			t.Errorf("a refusal shows key material: %v", e)
		}
	}
}
