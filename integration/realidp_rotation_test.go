package integration

// Point 3 of issue 15 (and 4 end to end), black-box through the built
// binary: the client certificate of tls_client_auth is replaced on disk
// while requests flow, and the client assertion file of private_key_jwt
// all along. No request fails; the new certificate is used within
// seconds, and every token request carries the file's latest assertion.

import (
	"bufio"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/oidctest"
)

// startBinary runs the built binary on config and returns its address
// and a function that stops it with SIGTERM and returns its logs.
func startBinary(t *testing.T, bin, config string) (addr string, stop func() string) {
	t.Helper()
	cmd := exec.Command(bin, "--config", config)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var logged strings.Builder
	lines := bufio.NewScanner(stderr)
	for addr == "" && lines.Scan() {
		logged.WriteString(lines.Text() + "\n")
		var l struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "authproxy listening" {
			addr = l.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no listening line:\n%s", logged.String())
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); rest <- string(b) }()
	return addr, func() string {
		cmd.Process.Signal(syscall.SIGTERM)
		logs := logged.String() + <-rest
		if err := cmd.Wait(); err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		return logs
	}
}

// serialOf is a certificate serial as the provider records it.
func normalSerial(s string) string { return strings.TrimLeft(strings.ToUpper(s), "0") }

func TestRealServerCertificateAndAssertionRotationUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	platformKey := newSigner(t, "ec")
	subject := pkix.Name{CommonName: "mtls", Organization: []string{"authproxy tests"}}
	idp := startRealIdP(t, oidctest.Options{AccessTokenTTL: 2 * time.Second, Clients: []oidctest.Client{
		{ID: "mtls", AuthMethod: "tls_client_auth", SubjectDN: "CN=mtls,O=authproxy tests"},
		{ID: "platform", AuthMethod: "private_key_jwt", Keys: jwks(platformKey.Public(), "platform")},
	}})
	v1, v2 := idp.ClientCert(subject), idp.ClientCert(subject)
	certFile, keyFile := idp.write(t, "tls.crt", v1.CertPEM, 0o644), idp.write(t, "tls.key", v1.KeyPEM, 0o600)
	firstAssertion := platformJWT(t, platformKey, jose.ES256, "platform", "platform", idp.TokenURL)
	saToken := idp.write(t, "sa-token", []byte(firstAssertion), 0o600)
	short := "      refresh_before: 1s\n"
	cfg := "listen: 127.0.0.1:0\nadmin: {listen: off}\nlog: {level: info, format: json}\nstore: {type: memory}\nupstreams:\n" +
		upstream("mtls", idp.api(t, "mtls"), idp.TokenURL, "      client_id: mtls\n      auth_method: tls_client_auth\n"+
			"      tls: {ca_file: "+idp.caFile+", cert_file: "+certFile+", key_file: "+keyFile+"}\n"+short) +
		upstream("platform", idp.api(t, "platform"), idp.TokenURL, "      client_id: platform\n      auth_method: private_key_jwt\n"+
			"      client_assertion_file: "+saToken+"\n      tls: {ca_file: "+idp.caFile+"}\n"+short)
	configPath := filepath.Join(idp.dir, "proxy.yaml")
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, stop := startBinary(t, bin, configPath)

	// The platform writes a new token every 100ms: oidc-provider refuses
	// an assertion's jti the second time (RFC 7523 3 allows it to), so
	// each token request must find a new one in the file. (Entra ID, which
	// federates Kubernetes tokens, takes the same one for its hour.)
	var writtenMu sync.Mutex
	written := map[string]bool{firstAssertion: true}
	platformDone := make(chan struct{})
	var platformWG sync.WaitGroup
	platformWG.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-platformDone:
				return
			case <-tick.C:
				a := platformJWT(t, platformKey, jose.ES256, "platform", "platform", idp.TokenURL)
				writtenMu.Lock()
				written[a] = true
				writtenMu.Unlock()
				idp.write(t, "sa-token", []byte(a), 0o600)
			}
		}
	})
	defer func() {
		if platformDone != nil {
			close(platformDone)
			platformWG.Wait()
		}
	}()

	// The load: two clients per upstream, one request after another, with
	// a pause so as not to starve the machine the tests share.
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	done := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for _, name := range []string{"mtls", "platform", "mtls", "platform"} {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				resp, err := client.Get("http://" + addr + "/" + name + "/work")
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", name, resp.StatusCode, body))
				}
			}
		})
	}
	stopLoad := func() { close(done); wg.Wait() }
	defer func() {
		if done != nil {
			stopLoad()
		}
	}()

	requests := func(client string) []oidctest.TokenRequest {
		var out []oidctest.TokenRequest
		for _, r := range idp.Records().TokenRequests {
			if r.Params.Get("client_id") == client {
				out = append(out, r)
			}
		}
		return out
	}
	poll := func(what string, cond func() bool) time.Time {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Now()
	}
	poll("two refreshes of each on the first credentials", func() bool {
		return len(requests("mtls")) >= 3 && len(requests("platform")) >= 3
	})

	// cert-manager writes the certificate, then the key: each file by
	// rename, so never half-written, but for a moment the certificate is
	// new and the key old.
	rotated := time.Now()
	idp.write(t, "tls.crt", v2.CertPEM, 0o644)
	idp.write(t, "tls.key", v2.KeyPEM, 0o600)
	certUsed := poll("a token request with the new certificate", func() bool {
		for _, r := range requests("mtls") {
			if normalSerial(r.ClientCertSerial) == normalSerial(fmt.Sprintf("%X", v2.Leaf.SerialNumber)) {
				return true
			}
		}
		return false
	})
	t.Logf("after the rotation, the new certificate was used within %v", certUsed.Sub(rotated).Round(10*time.Millisecond))
	if certUsed.Sub(rotated) > 5*time.Second {
		t.Errorf("the new certificate took more than 5s")
	}
	// Two more refreshes each, on the new credentials.
	n, m := len(requests("mtls")), len(requests("platform"))
	poll("two more refreshes of each", func() bool { return len(requests("mtls")) >= n+2 && len(requests("platform")) >= m+2 })
	stopLoad()
	done = nil
	close(platformDone)
	platformWG.Wait()
	platformDone = nil
	logs := stop()

	t.Logf("%d requests through the proxy during the test", sent.Load())
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed; the first: %v", f, sent.Load(), firstFailure.Load())
	}
	newSerial := normalSerial(fmt.Sprintf("%X", v2.Leaf.SerialNumber))
	sawNew := false
	for i, r := range requests("mtls") {
		if r.Status != 200 || r.AuthMethod != "tls_client_auth" {
			t.Errorf("mtls token request %d: %d %s (method %q)", i, r.Status, r.Error, r.AuthMethod)
		}
		isNew := normalSerial(r.ClientCertSerial) == newSerial
		if sawNew && !isNew {
			t.Errorf("mtls token request %d went back to the old certificate", i)
		}
		sawNew = sawNew || isNew
	}
	sentAssertions := map[string]bool{}
	for i, r := range requests("platform") {
		a := r.Params.Get("client_assertion")
		if r.Status != 200 || !written[a] || sentAssertions[a] {
			t.Errorf("platform token request %d: %d %s; the platform's assertion %v, sent before %v", i, r.Status, r.Error, written[a], sentAssertions[a])
		}
		sentAssertions[a] = true
	}
	for _, secret := range append([]string{string(v1.KeyPEM), string(v2.KeyPEM)}, slices.Collect(maps.Keys(written))...) {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[len(secret)/2:]) {
			t.Errorf("the logs hold a key or an assertion")
		}
	}
}
