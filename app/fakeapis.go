package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/pki"
)

// composeRefreshToken is the refresh token the fake Redbooth of
// `authproxy fakeapis` accepts from the start, as if someone had logged
// in before: deploy/compose.yaml seeds the proxy with it, so that
// `docker compose up` shows a three-legged upstream working at once. It
// is redeemed once, like any other; from then on the proxy's store holds
// the chain.
const composeRefreshToken = "demo-redbooth-refresh-token"

// maxFakeDelay bounds ?fake_delay=, so a typo cannot hold a request for
// hours.
const maxFakeDelay = 2 * time.Minute

// fakeapisCommand is `authproxy fakeapis`: the fake APIs, for
// docker-compose.
var fakeapisCommand = command{
	name: "fakeapis", args: "[--host H] [--base-port P] [--tls-ca DIR]",
	summary: "serve the fake APIs the tests use (for docker-compose)",
	about: `Serve the fake APIs the tests use, one port each from --base-port on:
redgifs, producthunt, teenquotes, generic, redbooth. Their client is
demo-client, its secret demo-secret. With --tls-ca DIR (a CA as
authproxy ca create writes it), they speak HTTPS, with a certificate from
that CA for the name a client calls them by.`,
	example: "authproxy fakeapis --host 0.0.0.0 --base-port 9101",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		host := fs.String("host", "127.0.0.1", "the `address` to serve on")
		port := portFlag(9101)
		fs.Var(&port, "base-port", "the first `port`; one per API (0: any free ports)")
		tlsCA := fs.String("tls-ca", "", "serve HTTPS with certificates from the CA in `DIR` (ca.pem, ca-key.pem)")
		return func(ctx context.Context, _ string) error { return fakeapis(ctx, *host, int(port), *tlsCA, opts) }
	},
}

// fakeapis serves the fake APIs the tests use, each on its own port from
// basePort on (0: any free ports), until ctx is done. docker-compose runs
// it as the APIs behind the proxy, so `docker compose up` needs no
// credentials. The client is demo-client / demo-secret.
//
// Beyond the fakes themselves, each port answers GET /_fake/stats (every
// fake's counts, no secrets: see fakeapi.Stats) and POST /_fake/expire
// (this fake's access tokens expire now, as a real one's do after their
// lifetime), and an API request with ?fake_delay=15s is answered that
// much later, so that tests from outside the process can watch what the
// proxy does.
//
// With tlsCA, a directory holding a CA (ca.pem, ca-key.pem, as `authproxy
// ca create` writes), every port speaks HTTPS instead, with a certificate
// from that CA for the name the client asks for: the fakes stand for real
// APIs called by their own names (docker-compose's forward profile), and
// a client, or the proxy, trusts them by trusting that CA.
func fakeapis(ctx context.Context, host string, basePort int, tlsCA string, opts Options) error {
	var tlsConfig *tls.Config
	if tlsCA != "" {
		var err error
		if tlsConfig, err = fakeTLS(tlsCA, opts.Now); err != nil {
			return fmt.Errorf("authproxy fakeapis: --tls-ca %s: %w", tlsCA, err)
		}
	}
	scheme := map[bool]string{false: "http", true: "https"}[tlsConfig != nil]
	flavors := append(fakeapi.All(), fakeapi.Redbooth())
	// Every fake and its listener first, then serving: each port's
	// /_fake/stats reads the whole map, which must not change under it.
	apis := map[string]*fakeapi.Server{}
	listeners := make([]net.Listener, 0, len(flavors))
	for i, f := range flavors {
		port := 0
		if basePort != 0 {
			port = basePort + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("authproxy fakeapis: %w", err)
		}
		if tlsConfig != nil {
			ln = tls.NewListener(ln, tlsConfig)
		}
		listeners = append(listeners, ln)
		api := newFakeAPI(f, opts.Now)
		if f.ThreeLegged {
			api.AcceptRefreshToken(composeRefreshToken)
		}
		api.SetAPIHook(delayHook)
		apis[f.Name] = api
	}
	var servers fakeServers
	defer servers.close()
	for i, f := range flavors {
		servers.serve(listeners[i], fakeControl(apis[f.Name], apis))
		fmt.Fprintf(opts.Stdout, "%s %s://%s token=%s api=%s\n", f.Name, scheme, listeners[i].Addr(), f.TokenPath, f.APIPath)
	}
	<-ctx.Done()
	return nil
}

// fakeTLS serves each TLS name a client asks for (SNI) with a leaf
// minted from the CA in dir, for the names the CA permits.
func fakeTLS(dir string, now func() time.Time) (*tls.Config, error) {
	ca, err := pki.LoadCA(filepath.Join(dir, pki.CertFileName), filepath.Join(dir, pki.KeyFileName))
	if err != nil {
		return nil, err
	}
	leaves, err := pki.NewMinter(ca, now, 0)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == "" {
				return nil, errors.New("no TLS name (SNI) asked for: call the fake by a name its CA permits")
			}
			return leaves.Certificate(strings.ToLower(hello.ServerName))
		},
	}, nil
}

// fakeServers are the fake APIs' servers one command runs. Their Serve
// goroutines are theirs: close stops the servers and waits for them.
type fakeServers struct {
	servers []*http.Server
	serving sync.WaitGroup
}

func (f *fakeServers) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	f.servers = append(f.servers, srv)
	f.serving.Add(1)
	go func() {
		defer f.serving.Done()
		srv.Serve(ln)
	}()
}

func (f *fakeServers) close() {
	for _, s := range f.servers {
		s.Close()
	}
	f.serving.Wait()
}

// newFakeAPI is one fake as the demo and the compose stack run it. The
// fake Redbooth retires a redeemed refresh token when the new access
// token is first used, as Redbooth's Doorkeeper does
// (refresh_token_revoked_on_use).
func newFakeAPI(f fakeapi.Flavor, now func() time.Time) *fakeapi.Server {
	api := fakeapi.New(f, "demo-client", demoSecret, now)
	api.SetRevokeOnUse(f.ThreeLegged)
	return api
}

// delayHook answers an API request carrying ?fake_delay=DURATION that
// much later (at most maxFakeDelay): a request still in flight when the
// proxy is told to stop.
func delayHook(w http.ResponseWriter, r *http.Request, _ *fakeapi.Request) bool {
	d, err := time.ParseDuration(r.URL.Query().Get("fake_delay"))
	if err != nil || d <= 0 {
		return false
	}
	t := time.NewTimer(min(d, maxFakeDelay))
	defer t.Stop()
	select {
	case <-t.C:
		return false // answered as usual
	case <-r.Context().Done():
		return true
	}
}

// fakeControl serves one fake API plus the /_fake/ paths. It matches
// paths itself rather than with a ServeMux, which would redirect the odd
// paths some tests send before the fake sees them.
func fakeControl(api *fakeapi.Server, all map[string]*fakeapi.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/_fake/stats" && r.Method == http.MethodGet:
			stats := map[string]fakeapi.Stats{}
			for name, a := range all {
				stats[name] = a.Stats()
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(stats)
		case r.URL.Path == "/_fake/expire" && r.Method == http.MethodPost:
			api.RevokeAll()
			w.WriteHeader(http.StatusNoContent)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// demoVar is how demo.yaml names what only the running demo knows.
var demoVar = regexp.MustCompile(`\$\{(DEMO_[A-Z_]+)\}`)

// startDemo serves the fake APIs on loopback until stop is called and
// returns the embedded config pointed at them, with lines to log that say
// what to try. The config is written, filled in, to a temporary directory
// that also holds the token store, so that `authproxy login` run from
// another terminal reaches the same fake Redbooth and the same store. stop
// also removes the directory.
func startDemo(opts Options) (_ *config.Config, tries []string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "authproxy-demo-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("demo: %w", err)
	}
	var servers fakeServers
	stop = func() {
		servers.close()
		os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	vars := map[string]string{"DEMO_CLIENT_SECRET": demoSecret}
	tries = []string{"demo mode: the fake APIs run in this process; no credentials are needed. Try:"}
	for _, f := range append(fakeapi.All(), fakeapi.Redbooth()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("demo: %w", err)
		}
		api := newFakeAPI(f, opts.Now)
		if f.ThreeLegged {
			vars["DEMO_"+strings.ToUpper(f.Name)+"_REFRESH_TOKEN"] = api.SeedRefreshToken()
		}
		servers.serve(ln, api)
		vars["DEMO_"+strings.ToUpper(f.Name)+"_URL"] = "http://" + ln.Addr().String()
		tries = append(tries, fmt.Sprintf("  curl http://{addr}/%s%s", f.Name, f.APIPath))
	}
	text := demoVar.ReplaceAllStringFunc(string(demoConfig), func(m string) string {
		return vars[demoVar.FindStringSubmatch(m)[1]]
	})
	path := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, nil, nil, fmt.Errorf("demo: %w", err)
	}
	cfg, err := config.Load(path, opts.config())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("demo config: %w", err)
	}
	tries = append(tries,
		"redbooth acts for a user (authorization code, rotating refresh tokens); its first refresh token is seeded. A login, with the fake's consent page approving by itself:",
		"  authproxy login redbooth --config "+path+" --no-browser   (with go run: go run . login ...)")
	return cfg, tries, stop, nil
}
