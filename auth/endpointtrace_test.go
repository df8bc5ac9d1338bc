package auth_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A token request not answered is a client span whose status says only
// that: the transport's error may hold what was sent, and the fetch span
// has it, redacted. Its url.full has no query, which may hold a key.
func TestTraceOfATokenRequestNotAnswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	const key = "key-in-the-token-url-5e0c"
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	cache, err := auth.NewSource(context.Background(), auth.Settings{Name: "api", Client: auth.Client{
		TokenURL: "http://" + addr + "/token?api_key=" + key, ClientID: "proxy", ClientSecret: testClientSecret}},
		auth.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if _, err := cache.Token(context.Background()); err == nil {
		t.Fatal("a token from a refused connection")
	}
	var client, fetch sdktrace.ReadOnlySpan
	for _, sp := range spans.Ended() {
		switch sp.Name() {
		case "POST":
			client = sp
		case auth.SpanTokenFetch:
			fetch = sp
		}
	}
	if client == nil || fetch == nil {
		t.Fatalf("no client span or no fetch span")
	}
	if client.Parent().SpanID() != fetch.SpanContext().SpanID() {
		t.Errorf("the token request's span is not a child of the fetch's")
	}
	if got := client.Status(); got.Code != codes.Error || got.Description != "the token request was not answered" {
		t.Errorf("client span status %v", got)
	}
	var attrs []string
	for _, kv := range client.Attributes() {
		attrs = append(attrs, string(kv.Key)+"="+kv.Value.Emit())
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	want := "http.request.method=POST url.full=http://" + addr + "/token?[redacted] server.address=127.0.0.1 server.port=" + port +
		" error.type=transport"
	if got := strings.Join(attrs, " "); got != want {
		t.Errorf("client span attributes\n%s\nwant\n%s", got, want)
	}
	for _, kv := range fetch.Attributes() {
		if kv.Key == "authproxy.token.endpoint_status" {
			t.Errorf("the fetch span has an endpoint status for a request not answered")
		}
	}
}
