package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"github.com/sirupsen/logrus"
)

func TestAHeaderValueThatCannotBeSentIsATokenError(t *testing.T) {
	api := newUpstream(t, nil)
	for name, up := range map[string]Upstream{
		"a control byte in the format": {Format: "Bearer\x01{token}", Tokens: &fakeTokens{}},
		"CRLF in the token":            {Tokens: &fixedToken{&auth.Token{AccessToken: "t\r\nX-Injected: 1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			up.Name, up.Target = "api", mustURL(t, api.URL)
			p := startProxy(t, up)
			resp := do(t, mustRequest(t, "GET", p.URL+"/api/x", nil))
			body := readJSON(t, resp)
			if resp.StatusCode != 502 || body["error"] != "token_unavailable" || !strings.Contains(fmt.Sprint(body["detail"]), "cannot be sent in a header") {
				t.Errorf("status %d body %v", resp.StatusCode, body)
			}
			if strings.Contains(fmt.Sprint(body), "X-Injected") {
				t.Errorf("the answer shows the token: %v", body)
			}
		})
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// TestAClientThatLeavesWhileWaitingForATokenIs499 (issue 13 item 9): it
// was logged and counted as 502 token_unavailable, as if the token
// endpoint had failed.
func TestAClientThatLeavesWhileWaitingForATokenIs499(t *testing.T) {
	api := newUpstream(t, nil)
	waiting := make(chan struct{})
	tokens := &waitingTokens{waiting: waiting}
	events := make(chan RequestEvent, 1)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := logrus.New()
	logger.Formatter = &logrus.JSONFormatter{}
	logger.Out = lockedWriter{&mu, &logs}
	h, err := New([]Upstream{{Name: "api", Target: mustURL(t, api.URL), Tokens: tokens}},
		Options{Log: logger, OnRequest: func(ev RequestEvent) { events <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-waiting // the request waits for its token; its client leaves
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/x", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered")
	}
	if ev := <-events; ev.Status != statusClientClosedRequest {
		t.Errorf("counted as %d, want 499", ev.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), `"status":499`) || !strings.Contains(logs.String(), `"error":"client_closed_request"`) {
		t.Errorf("access log: %s", logs.String())
	}
}

// waitingTokens is a TokenSource whose token never comes: Token waits
// until the caller gives up, after closing waiting.
type waitingTokens struct {
	waiting chan struct{}
	once    sync.Once
}

func (w *waitingTokens) Token(ctx context.Context) (*auth.Token, error) {
	w.once.Do(func() { close(w.waiting) })
	<-ctx.Done()
	return nil, ctx.Err()
}
func (w *waitingTokens) Invalidate(*auth.Token) {}

// fixedToken is a TokenSource that always hands out tok.
type fixedToken struct{ tok *auth.Token }

func (f *fixedToken) Token(context.Context) (*auth.Token, error) { return f.tok, nil }
func (f *fixedToken) Invalidate(*auth.Token)                     {}
