package integration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/proxy"
)

// loadProxy wires auth and proxy as app does, but serves and reaches the
// upstream over HTTP/2: 2,000 concurrent HTTP/1 requests through three
// hops would need more goroutines than the race detector allows (8,128).
type loadProxy struct {
	api     *fakeapi.Server
	client  *http.Client
	url     string
	arrived atomic.Int32 // requests that have reached the proxy's handler
	full    chan struct{}
	n       int32
}

func startLoadProxy(t *testing.T, n int32) *loadProxy {
	f := fakeapi.RedGIFs()
	lp := &loadProxy{api: fakeapi.New(f, clientID, clientSecret, nil), n: n}
	apiSrv := httptest.NewUnstartedServer(lp.api)
	apiSrv.EnableHTTP2 = true
	// The default of 250 streams a connection would queue requests at the
	// client, and the burst would never all be inside the proxy at once.
	apiSrv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(n) * 2}
	apiSrv.StartTLS()
	t.Cleanup(apiSrv.Close)

	upstreamTransport := apiSrv.Client().Transport.(*http.Transport).Clone()
	upstreamTransport.ForceAttemptHTTP2 = true
	cache := auth.NewCache(&auth.ClientCredentials{Client: auth.Client{
		TokenURL: apiSrv.URL + f.TokenPath, ClientID: clientID, ClientSecret: clientSecret,
		HTTPClient: apiSrv.Client(),
	}}, auth.CacheOptions{
		RefreshBefore: 10 * time.Minute,
		// The fetch is held by the test's gate until every request has
		// arrived, which on a loaded CI machine under -race takes a while.
		FetchTimeout: 5 * time.Minute,
	})
	target, _ := url.Parse(apiSrv.URL)
	h, err := proxy.New([]proxy.Upstream{{
		Name: f.Name, Target: target, PathPrefix: "/redgifs", Tokens: cache,
		ReplayOn: []int{401}, MaxReplayBody: 1 << 20, Transport: upstreamTransport,
	}}, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lp.arrived.Add(1) == lp.n {
			close(lp.full)
		}
		h.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(n) * 2}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	lp.client = srv.Client()
	lp.client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"h2"}
	t.Cleanup(lp.client.CloseIdleConnections)
	t.Cleanup(upstreamTransport.CloseIdleConnections)
	lp.url = srv.URL + "/redgifs" + f.APIPath
	// Open both HTTP/2 connections, client to proxy and proxy to upstream,
	// before the burst, so its requests share them: a connection dialled
	// mid-burst can miss the server's 2s handshake deadline on a machine
	// this loaded (seen under -race).
	for _, warm := range []struct {
		c   *http.Client
		url string
	}{{lp.client, srv.URL + "/warm-up"}, {&http.Client{Transport: upstreamTransport}, apiSrv.URL + "/warm-up"}} {
		resp, err := warm.c.Get(warm.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s: %s, not HTTP/2", warm.url, resp.Proto)
		}
	}
	return lp
}

// burst sends n requests at once, with the token endpoint held until all
// n are inside the proxy, and returns how many did not get 200.
func (lp *loadProxy) burst(t *testing.T) int {
	lp.arrived.Store(0)
	lp.full = make(chan struct{})
	lp.api.SetTokenGate(lp.full)
	var failed atomic.Int32
	var wg sync.WaitGroup
	for range lp.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := lp.client.Get(lp.url)
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

func TestLoadColdCacheUnder2000ConcurrentRequestsFetchesOneToken(t *testing.T) {
	lp := startLoadProxy(t, 2000)
	if failed := lp.burst(t); failed != 0 {
		t.Errorf("%d of 2000 requests failed", failed)
	}
	if got := lp.api.TokenRequests(); got != 1 {
		t.Errorf("2000 concurrent cold requests made %d token requests, want 1", got)
	}

	t.Run("a token revoked under the same load is refreshed once", func(t *testing.T) {
		lp.api.RevokeAll()
		if failed := lp.burst(t); failed != 0 {
			t.Errorf("%d of 2000 requests failed", failed)
		}
		if got := lp.api.TokenRequests(); got != 2 {
			t.Errorf("the revocation caused %d refreshes, want 1", got-1)
		}
		rejected := 0
		for _, r := range lp.api.APIRequests()[min(2000, len(lp.api.APIRequests())):] {
			if !r.Authorized {
				rejected++
			}
		}
		t.Logf("%d requests met the revoked token and were replayed", rejected)
	})
}
