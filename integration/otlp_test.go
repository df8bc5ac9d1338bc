package integration

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// With tracing on, the program exports its spans over OTLP/HTTP to the
// configured endpoint (here a receiver that only counts them: the real
// backend is TestTracesInJaeger's), and the token endpoint and the API
// each receive a traceparent of the app's trace.
func TestTracingExportsSpansAndPropagatesTraceparent(t *testing.T) {
	var mu sync.Mutex
	var exports int
	var exported strings.Builder
	otlp := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			exports++
			exported.Write(body)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	var tokenTP, apiTP []string
	f := fakeapi.RedGIFs()
	e := start(t, f, setup{
		topYAML: "tracing: {enabled: true, protocol: http, endpoint: " + otlp + "}\n",
		wrapAPI: func(api http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				if r.URL.Path == f.TokenPath {
					tokenTP = append(tokenTP, r.Header.Get("Traceparent"))
				} else {
					apiTP = append(apiTP, r.Header.Get("Traceparent"))
				}
				mu.Unlock()
				api.ServeHTTP(w, r)
			})
		},
	})
	const traceID = "6bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", e.url+f.APIPath, nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-20f067aa0ba902b7-01")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e.stop() // sends the spans it holds
	mu.Lock()
	defer mu.Unlock()
	if exports == 0 {
		t.Fatalf("no span was exported to the OTLP endpoint")
	}
	for what, tps := range map[string][]string{"token endpoint": tokenTP, "API": apiTP} {
		if len(tps) != 1 || !strings.HasPrefix(tps[0], "00-"+traceID+"-") || strings.Contains(tps[0], "20f067aa0ba902b7") {
			t.Errorf("the %s got traceparent %q; want one of the app's trace, from a span of the proxy's", what, tps)
		}
	}
	e.assertNoSecretsIn("the exported spans", exported.String())
}
