package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// cannedAPI answers every request at once, in memory, after reading its
// body, so that a request's allocations are the same from run to run.
type cannedAPI struct{ answer string }

func (a cannedAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"256"}}, ContentLength: int64(len(a.answer)),
		Body: io.NopCloser(strings.NewReader(a.answer)), Request: r}, nil
}

type noAccessLog struct{}

func (noAccessLog) LogAccess(AccessLine) {}

// The proxy's own work costs almost no allocation over a bare
// ReverseProxy that sets a fixed header with the same transport and
// buffers (issue 16): the request's state is one allocation and the
// request copy that carries it another, the token's header costs one
// fewer than http.Header.Set, the idle timeout none. (The access log is
// measured in app; the body read timeout is left out, as the recorder
// has no deadlines to set.)
func TestRequestAllocationsOverABareReverseProxy(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations over thousands of requests, without the race detector")
	}
	target, _ := url.Parse("http://api.example")
	api := cannedAPI{strings.Repeat("x", 256)}
	h, err := New([]Upstream{{Name: "api", Target: target, Tokens: &fakeTokens{}, Transport: api,
		ReplayOn: []int{401}, MaxReplayBody: 1 << 20, IdleTimeout: time.Minute}},
		Options{AccessLog: noAccessLog{}, MaxRequestBody: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer t1")
		},
		Transport: api, BufferPool: copyBuffers,
	}
	body := bytes.Repeat([]byte("b"), 64<<10)
	for _, tt := range []struct {
		method string
		body   []byte
		max    float64
	}{
		// The state and the request copy, less the header's slice.
		{"GET", nil, 1},
		// And the body's wrapper and replay copy, made only for a request
		// with a body, and the copy's channel (its buffer is pooled).
		{"POST", body, 3},
	} {
		allocs := func(h http.Handler) float64 {
			w := httptest.NewRecorder()
			return testing.AllocsPerRun(1000, func() {
				req := httptest.NewRequest(tt.method, "/v1/items", bytes.NewReader(tt.body))
				w.Body.Reset()
				h.ServeHTTP(w, req)
			})
		}
		ours, base := allocs(h), allocs(bare)
		t.Logf("%s: %.1f allocations a request, a bare ReverseProxy %.1f", tt.method, ours, base)
		if ours-base > tt.max+0.1 {
			t.Errorf("%s: %.1f allocations a request over a bare ReverseProxy, want at most %.0f", tt.method, ours-base, tt.max)
		}
	}
}
