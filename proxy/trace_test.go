package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The secrets of the traced tests: none may appear in any span.
const (
	traceClientSecret = "cs-TRACE-client-secret-0f9e"
	traceTokenURLKey  = "key-TRACE-in-token-url-7c1d"
	traceQueryKey     = "key-TRACE-in-client-query-3b2a"
	traceTokenPrefix  = "at-TRACE-access-token-"
)

// clientTraceparent is what the app sends: its trace and span.
const (
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID      = "00f067aa0ba902b7"
	clientTraceparent = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// tracedSetup is a proxy with tracing on, in front of a real auth.Cache
// asking a token endpoint, and an upstream; both record the traceparent
// they were sent.
type tracedSetup struct {
	proxy    testProxy
	spans    *tracetest.SpanRecorder
	waits    chan struct{} // a token wait span started
	issued   atomic.Int32
	mu       sync.Mutex
	tokenTPs []string // traceparents the token endpoint got
	apiTPs   []string // and the upstream
	release  chan struct{}
}

type tracedOptions struct {
	// tokenAnswer, if set, answers the token endpoint; else tokens are
	// issued in turn.
	tokenAnswer func(w http.ResponseWriter)
	// hold makes the token endpoint wait for release.
	hold bool
	// api answers the upstream; nil: 200.
	api func(w http.ResponseWriter, r *http.Request)
}

// startedSignal sends on ch when a token wait span starts.
type startedSignal struct {
	sdktrace.SpanProcessor
	ch chan struct{}
}

func (s startedSignal) OnStart(parent context.Context, sp sdktrace.ReadWriteSpan) {
	if sp.Name() == auth.SpanTokenWait {
		s.ch <- struct{}{}
	}
}

func startTraced(t *testing.T, o tracedOptions) *tracedSetup {
	t.Helper()
	s := &tracedSetup{spans: tracetest.NewSpanRecorder(), waits: make(chan struct{}, 64), release: make(chan struct{})}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans),
		sdktrace.WithSpanProcessor(startedSignal{SpanProcessor: tracetest.NewSpanRecorder(), ch: s.waits}))
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.tokenTPs = append(s.tokenTPs, r.Header.Get("Traceparent"))
		s.mu.Unlock()
		if o.hold {
			<-s.release
		}
		if o.tokenAnswer != nil {
			o.tokenAnswer(w)
			return
		}
		n := s.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"%s%d","token_type":"Bearer","expires_in":3600}`, traceTokenPrefix, n)
	}))
	t.Cleanup(idp.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.apiTPs = append(s.apiTPs, r.Header.Get("Traceparent"))
		s.mu.Unlock()
		if o.api != nil {
			o.api(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(api.Close)
	cache, err := auth.NewSource(context.Background(), auth.Settings{Name: "api", Client: auth.Client{
		TokenURL: idp.URL + "/token?api_key=" + traceTokenURLKey, ClientID: "proxy", ClientSecret: traceClientSecret}},
		auth.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	s.proxy = startProxyWith(t, Options{TracerProvider: tp}, Upstream{Name: "api", PathPrefix: "/api",
		Target: mustURL(t, api.URL), Tokens: cache, ReplayOn: []int{401}})
	return s
}

// get sends one request with the client's traceparent and a key in the
// query, and waits until the handler is done (and its span ended).
func (s *tracedSetup) get(t *testing.T) int {
	t.Helper()
	req := mustRequest(t, "GET", s.proxy.URL+"/api/items?key="+traceQueryKey, nil)
	req.Header.Set("Traceparent", clientTraceparent)
	resp := do(t, req)
	io.Copy(io.Discard, resp.Body)
	<-s.proxy.served
	return resp.StatusCode
}

func (s *tracedSetup) ended() []sdktrace.ReadOnlySpan { return s.spans.Ended() }

func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if sp.Name() == name {
			out = append(out, sp)
		}
	}
	return out
}

func one(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := named(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %s", len(got), name, spanNames(spans))
	}
	return got[0]
}

func spanNames(spans []sdktrace.ReadOnlySpan) string {
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name())
	}
	return strings.Join(names, ", ")
}

func attr(sp sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q is not a child of %q", child.Name(), parent.Name())
	}
}

// carried checks that a traceparent sent on names span.
func carried(t *testing.T, tp string, sp sdktrace.ReadOnlySpan) {
	t.Helper()
	want := "00-" + sp.SpanContext().TraceID().String() + "-" + sp.SpanContext().SpanID().String() + "-01"
	if tp != want {
		t.Errorf("traceparent sent %q, want %q (span %q)", tp, want, sp.Name())
	}
}

func TestTraceOfAColdRequest(t *testing.T) {
	s := startTraced(t, tracedOptions{})
	if code := s.get(t); code != 200 {
		t.Fatalf("status %d", code)
	}
	spans := s.ended()
	server := one(t, spans, "GET api")
	if server.SpanKind() != trace.SpanKindServer || server.SpanContext().TraceID().String() != clientTraceID ||
		server.Parent().SpanID().String() != clientSpanID || !server.Parent().IsRemote() {
		t.Errorf("server span %v does not continue the client's traceparent (parent %v)", server.SpanContext(), server.Parent())
	}
	if v := attr(server, "http.response.status_code").AsInt64(); v != 200 {
		t.Errorf("server span status %d", v)
	}
	if v := attr(server, "url.path").AsString(); v != "/api/items" {
		t.Errorf("url.path %q", v)
	}
	wait := one(t, spans, auth.SpanTokenWait)
	childOf(t, wait, server)
	if attr(wait, "authproxy.token.cache").AsString() != "miss" || attr(wait, "authproxy.token.reason").AsString() != "startup" {
		t.Errorf("wait span attributes %v", wait.Attributes())
	}
	fetch := one(t, spans, auth.SpanTokenFetch)
	childOf(t, fetch, wait)
	for k, want := range map[string]string{"authproxy.token.grant": "client_credentials", "authproxy.token.client_auth": "client_secret_post",
		"authproxy.upstream": "api", "authproxy.token.fetch_outcome": "ok"} {
		if got := attr(fetch, k).AsString(); got != want {
			t.Errorf("fetch span %s = %q, want %q", k, got, want)
		}
	}
	if attr(fetch, "authproxy.token.endpoint_status").AsInt64() != 200 || attr(fetch, "authproxy.token.retry_count").Type() != attribute.INT64 {
		t.Errorf("fetch span attributes %v", fetch.Attributes())
	}
	post := one(t, spans, "POST")
	childOf(t, post, fetch)
	if u := attr(post, "url.full").AsString(); strings.Contains(u, "?"+"api_key") || !strings.HasSuffix(u, "/token?[redacted]") {
		t.Errorf("token request url.full %q keeps the query", u)
	}
	attempt := one(t, spans, "GET")
	childOf(t, attempt, server)
	if attempt.SpanKind() != trace.SpanKindClient || attr(attempt, "http.response.status_code").AsInt64() != 200 {
		t.Errorf("attempt span %v %v", attempt.SpanKind(), attempt.Attributes())
	}
	if u := attr(attempt, "url.full").AsString(); strings.Contains(u, "?") {
		t.Errorf("upstream url.full %q keeps the query", u)
	}
	carried(t, s.tokenTPs[0], post)
	carried(t, s.apiTPs[0], attempt)

	// The second request finds the token cached: an attribute, no span.
	s.get(t)
	spans = s.ended()
	if n := len(named(spans, auth.SpanTokenWait)); n != 1 {
		t.Errorf("%d wait spans after a cached request, want 1", n)
	}
	servers := named(spans, "GET api")
	if len(servers) != 2 || attr(servers[1], "authproxy.token.cache").AsString() != "hit" {
		t.Errorf("the second request's span does not say the token was cached: %v", servers[len(servers)-1].Attributes())
	}
	noSecrets(t, spans)
}

func TestTraceOfABurstSharingOneFetch(t *testing.T) {
	s := startTraced(t, tracedOptions{hold: true})
	const n = 5
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", s.proxy.URL+"/api/items", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	for range n {
		<-s.waits
	}
	close(s.release)
	wg.Wait()
	for range n {
		<-s.proxy.served
	}
	if got := s.issued.Load(); got != 1 {
		t.Fatalf("%d token requests for the burst, want 1", got)
	}
	spans := s.ended()
	fetch := one(t, spans, auth.SpanTokenFetch)
	waits := named(spans, auth.SpanTokenWait)
	if len(waits) != n {
		t.Fatalf("%d wait spans, want %d", len(waits), n)
	}
	children, links := 0, 0
	for _, w := range waits {
		switch {
		case fetch.Parent().SpanID() == w.SpanContext().SpanID():
			children++
			if len(w.Links()) != 0 {
				t.Errorf("the wait that started the fetch links to it too")
			}
		case len(w.Links()) == 1 && w.Links()[0].SpanContext.SpanID() == fetch.SpanContext().SpanID():
			links++
			if !attr(w, "authproxy.token.shared_fetch").AsBool() {
				t.Errorf("a linked wait lacks authproxy.token.shared_fetch")
			}
		default:
			t.Errorf("wait span %v neither started nor links to the fetch (links %v)", w.SpanContext().SpanID(), w.Links())
		}
	}
	if children != 1 || links != n-1 {
		t.Errorf("%d waits started the fetch and %d link to it; want 1 and %d", children, links, n-1)
	}
	noSecrets(t, spans)
}

func TestTraceOfAReplayAfter401(t *testing.T) {
	s := startTraced(t, tracedOptions{api: func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+traceTokenPrefix+"1" {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, "ok")
	}})
	if code := s.get(t); code != 200 {
		t.Fatalf("status %d", code)
	}
	spans := s.ended()
	server := one(t, spans, "GET api")
	if attr(server, "authproxy.replay").AsString() != "success" {
		t.Errorf("server span attributes %v", server.Attributes())
	}
	replay := one(t, spans, SpanReplay)
	childOf(t, replay, server)
	if attr(replay, "authproxy.replay.reason").AsString() != "status_401" || attr(replay, "authproxy.replay").AsString() != "success" {
		t.Errorf("replay span attributes %v", replay.Attributes())
	}
	attempts := named(spans, "GET")
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans, want 2: %s", len(attempts), spanNames(spans))
	}
	first, second := attempts[0], attempts[1]
	childOf(t, first, server)
	childOf(t, second, replay)
	if attr(first, "http.response.status_code").AsInt64() != 401 || first.Status().Code != codes.Error {
		t.Errorf("first attempt %v %v", first.Attributes(), first.Status())
	}
	if attr(second, "http.request.resend_count").AsInt64() != 1 || attr(second, "http.response.status_code").AsInt64() != 200 {
		t.Errorf("replayed attempt %v", second.Attributes())
	}
	waits := named(spans, auth.SpanTokenWait)
	if len(waits) != 2 {
		t.Fatalf("%d wait spans, want 2", len(waits))
	}
	childOf(t, waits[1], replay)
	if attr(waits[1], "authproxy.token.reason").AsString() != "rejected" {
		t.Errorf("the replay's wait %v", waits[1].Attributes())
	}
	if len(named(spans, auth.SpanTokenFetch)) != 2 {
		t.Errorf("want 2 fetches: %s", spanNames(spans))
	}
	carried(t, s.apiTPs[1], second)
	noSecrets(t, spans)
}

func TestTraceOfATokenEndpointFailure(t *testing.T) {
	s := startTraced(t, tracedOptions{tokenAnswer: func(w http.ResponseWriter) {
		// An endpoint that echoes the secret it was sent: auth redacts it.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
			"error_description": "bad secret " + traceClientSecret})
	}})
	if code := s.get(t); code != 502 {
		t.Fatalf("status %d, want 502", code)
	}
	spans := s.ended()
	server := one(t, spans, "GET api")
	for k, want := range map[string]string{"authproxy.error": "token_unavailable", "authproxy.fault": "token_endpoint",
		"authproxy.error.reason": "token_endpoint_error"} {
		if got := attr(server, k).AsString(); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	if server.Status().Code != codes.Error || attr(server, "http.response.status_code").AsInt64() != 502 {
		t.Errorf("server span status %v %v", server.Status(), server.Attributes())
	}
	fetch := one(t, spans, auth.SpanTokenFetch)
	if fetch.Status().Code != codes.Error || attr(fetch, "authproxy.token.endpoint_status").AsInt64() != 401 ||
		attr(fetch, "authproxy.token.fetch_outcome").AsString() != "error" {
		t.Errorf("fetch span %v %v", fetch.Status(), fetch.Attributes())
	}
	if !strings.Contains(fetch.Status().Description, "invalid_client") {
		t.Errorf("fetch span's status %q does not say what the endpoint said", fetch.Status().Description)
	}
	if len(named(spans, "GET")) != 0 {
		t.Errorf("an upstream attempt was made without a token")
	}
	noSecrets(t, spans)
}

// noSecrets searches every span's name, attributes, status, events and
// links for the secrets the tests use, as the log tests do.
func noSecrets(t *testing.T, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no spans to search")
	}
	secrets := []string{traceClientSecret, traceTokenURLKey, traceQueryKey, traceTokenPrefix}
	for _, sp := range spans {
		var texts []string
		texts = append(texts, sp.Name(), sp.Status().Description)
		kvs := append([]attribute.KeyValue(nil), sp.Attributes()...)
		kvs = append(kvs, sp.Resource().Attributes()...)
		for _, ev := range sp.Events() {
			texts = append(texts, ev.Name)
			kvs = append(kvs, ev.Attributes...)
		}
		for _, l := range sp.Links() {
			kvs = append(kvs, l.Attributes...)
		}
		for _, kv := range kvs {
			texts = append(texts, string(kv.Key), kv.Value.Emit())
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q holds a secret: %q", sp.Name(), text)
				}
			}
		}
	}
}
