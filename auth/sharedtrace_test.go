package auth_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/redistest"
	"github.com/authproxy/authproxy/store"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// With a shared store, a fetch's span holds the store's calls: the
// replica that fetches reads, takes the fleet lock, stores and releases;
// the next one only reads, and finds the token.
func TestTraceOfTheFleetLockAndStoreReads(t *testing.T) {
	redis := redistest.Start(t)
	f := fakeapi.RedGIFs()
	api := fakeapi.New(f, testClientID, testClientSecret, time.Now)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client := auth.Client{TokenURL: srv.URL + f.TokenPath, ClientID: testClientID, ClientSecret: testClientSecret}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	var caches []*auth.Cache
	for range 2 {
		st, err := store.OpenRedis(context.Background(), store.RedisOptions{URL: redis.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		caches = append(caches, auth.NewCache(&auth.ClientCredentials{Client: client}, auth.CacheOptions{
			Shared: st, SharedKey: "api:" + client.Fingerprint(), LocalFallback: true, TracerProvider: tp}))
	}
	for i, c := range caches {
		if _, err := c.Token(context.Background()); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	ended := spans.Ended()
	var fetches []sdktrace.ReadOnlySpan
	for _, sp := range ended {
		if sp.Name() == auth.SpanTokenFetch {
			fetches = append(fetches, sp)
		}
	}
	if len(fetches) != 2 {
		t.Fatalf("%d fetch spans, want 2", len(fetches))
	}
	children := func(parent sdktrace.ReadOnlySpan) (names []string, attrs map[string]attribute.Value) {
		attrs = map[string]attribute.Value{}
		for _, sp := range ended {
			if sp.Parent().SpanID() == parent.SpanContext().SpanID() {
				names = append(names, sp.Name())
				for _, kv := range sp.Attributes() {
					attrs[sp.Name()+" "+string(kv.Key)] = kv.Value
				}
			}
		}
		return names, attrs
	}
	names, attrs := children(fetches[0])
	want := []string{auth.SpanSharedLoad, auth.SpanSharedLock, auth.SpanSharedLoad, auth.SpanSharedPut, auth.SpanSharedRelease}
	if len(names) != len(want) {
		t.Fatalf("the fetching replica's store calls %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("the fetching replica's store calls %v, want %v", names, want)
			break
		}
	}
	if !attrs[auth.SpanSharedLock+" authproxy.shared.acquired"].AsBool() {
		t.Errorf("the lock span does not say it was taken: %v", attrs)
	}
	names, attrs = children(fetches[1])
	if len(names) != 1 || names[0] != auth.SpanSharedLoad || !attrs[auth.SpanSharedLoad+" authproxy.shared.found"].AsBool() {
		t.Errorf("the second replica's store calls %v %v, want one read that found the token", names, attrs)
	}
}
