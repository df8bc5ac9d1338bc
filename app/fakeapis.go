package app

import (
	"context"
	"encoding/json"
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
func fakeapis(ctx context.Context, host string, basePort int, opts Options) int {
	flavors := append(fakeapi.All(), fakeapi.Redbooth())
	apis := map[string]*fakeapi.Server{}
	var servers fakeServers
	defer servers.close()
	for i, f := range flavors {
		port := 0
		if basePort != 0 {
			port = basePort + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			fmt.Fprintf(opts.Stderr, "authproxy fakeapis: %v\n", err)
			return 1
		}
		api := newFakeAPI(f, opts.Now)
		if f.ThreeLegged {
			api.AcceptRefreshToken(composeRefreshToken)
		}
		api.SetAPIHook(delayHook)
		apis[f.Name] = api
		servers.serve(ln, fakeControl(api, apis))
		fmt.Fprintf(opts.Stdout, "%s http://%s token=%s api=%s\n", f.Name, ln.Addr(), f.TokenPath, f.APIPath)
	}
	<-ctx.Done()
	return 0
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
	cfg, err := config.Load(path, config.Options{Lookup: opts.LookupEnv})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("demo config: %w", err)
	}
	tries = append(tries,
		"redbooth acts for a user (authorization code, rotating refresh tokens); its first refresh token is seeded. A login, with the fake's consent page approving by itself:",
		"  authproxy login redbooth --config "+path+" --no-browser   (with go run: go run . login ...)")
	return cfg, tries, stop, nil
}
