package app

import (
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/sirupsen/logrus"
)

// farAPI is a real TLS server that records, per request, whether its
// connection resumed a TLS session and which HTTP version it spoke, and
// counts the connections it accepted.
type farAPI struct {
	srv *httptest.Server

	mu       sync.Mutex
	resumed  []bool
	protos   []int
	newConns int
}

func startFarAPI(t *testing.T, http2, keepAlive bool) (*farAPI, config.Upstream) {
	t.Helper()
	api := &farAPI{}
	api.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		api.resumed = append(api.resumed, r.TLS.DidResume)
		api.protos = append(api.protos, r.ProtoMajor)
		api.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	api.srv.EnableHTTP2 = http2
	api.srv.Config.SetKeepAlivesEnabled(keepAlive)
	api.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			api.mu.Lock()
			api.newConns++
			api.mu.Unlock()
		}
	}
	api.srv.StartTLS()
	t.Cleanup(api.srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return api, config.Upstream{Name: "far", Timeout: 10 * time.Second, TLS: config.TLS{CAFile: ca}}
}

func (api *farAPI) get(t *testing.T, rt http.RoundTripper) {
	t.Helper()
	req, _ := http.NewRequest("GET", api.srv.URL+"/", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// A connection opened after the first resumes its TLS session: against a
// far API a full handshake is a round trip and a certificate check more,
// paid on every connection a burst opens past the idle pool.
func TestUpstreamTransportResumesTLSSessions(t *testing.T) {
	api, u := startFarAPI(t, false, false) // the API closes each connection after one answer
	rt, err := newUpstreamTransport(u, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	for range 3 {
		api.get(t, rt)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.newConns != 3 {
		t.Fatalf("%d connections, want 3 (one per request)", api.newConns)
	}
	if api.resumed[0] || !api.resumed[1] || !api.resumed[2] {
		t.Errorf("resumed per connection: %v, want [false true true]", api.resumed)
	}
}

// Where the API offers HTTP/2 through ALPN the proxy speaks it, and
// requests one after another share one connection; where it does not,
// HTTP/1.1 connections are kept and reused.
func TestUpstreamTransportReusesConnections(t *testing.T) {
	for _, tt := range []struct {
		name  string
		http2 bool
		proto int
	}{{"HTTP/2 offered", true, 2}, {"HTTP/1.1 only", false, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			api, u := startFarAPI(t, tt.http2, true)
			rt, err := newUpstreamTransport(u, logrus.New())
			if err != nil {
				t.Fatal(err)
			}
			defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			for range 5 {
				api.get(t, rt)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			if api.newConns != 1 {
				t.Errorf("%d connections for 5 requests in a row, want 1", api.newConns)
			}
			for i, p := range api.protos {
				if p != tt.proto {
					t.Errorf("request %d spoke HTTP/%d, want HTTP/%d", i, p, tt.proto)
				}
			}
		})
	}
}

// The upstream's max_connections is the transport's cap; 0 leaves none.
func TestUpstreamTransportCapsConnections(t *testing.T) {
	for _, n := range []int{256, 3, 0} {
		rt, err := newUpstreamTransport(config.Upstream{Name: "api", Timeout: time.Second, MaxConnections: n}, logrus.New())
		if err != nil {
			t.Fatal(err)
		}
		if got := rt.(*http.Transport).MaxConnsPerHost; got != n {
			t.Errorf("max_connections %d: MaxConnsPerHost %d", n, got)
		}
	}
}

// max_connections left out is sized from the memory limit (4 per MiB,
// at least 64: 256 in 64 MiB, where 1,000 requests in flight fit), and is
// no cap where there is no limit, as before the setting existed: a
// default must not make honest traffic wait where memory is not short.
func TestMaxConnectionsFromTheMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		configured int
		limit      int64
		want       int
	}{
		{config.MaxConnectionsAuto, 0, 0},
		{config.MaxConnectionsAuto, 64 << 20, 256},
		{config.MaxConnectionsAuto, 512 << 20, 2048},
		{config.MaxConnectionsAuto, 8 << 20, 64},
		{0, 64 << 20, 0},
		{100, 64 << 20, 100},
	} {
		if got := maxConnections(tt.configured, tt.limit); got != tt.want {
			t.Errorf("max_connections %d with a %d MiB limit: %d, want %d", tt.configured, tt.limit>>20, got, tt.want)
		}
	}
}
