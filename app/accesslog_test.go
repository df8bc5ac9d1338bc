package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
	"github.com/sirupsen/logrus"
)

// accessLogTime and accessLogDuration are what every golden line says of
// when and how long: the recording pinned them, as a clock would.
var accessLogTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const accessLogDuration = 1500 * time.Microsecond

// goldenTokens issues tok1, tok2, ... one after each invalidation, or
// fails with err.
type goldenTokens struct {
	mu  sync.Mutex
	n   int
	cur *auth.Token
	err error
}

func (g *goldenTokens) Token(context.Context) (*auth.Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return nil, g.err
	}
	if g.cur == nil {
		g.n++
		g.cur = &auth.Token{AccessToken: fmt.Sprintf("tok%d", g.n), TokenType: "Bearer"}
	}
	return g.cur, nil
}

func (g *goldenTokens) Invalidate(stale *auth.Token) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur == stale {
		g.cur = nil
	}
}

// accessLogCase is one request whose access line is kept in
// testdata/accesslog/NAME.golden.
type accessLogCase struct {
	name, format string
	tokens       *goldenTokens
	upstream     http.HandlerFunc
	method, path string
	body         string
	idle         time.Duration // the upstream's idle timeout; zero: a minute
}

func accessLogCases() []accessLogCase {
	ok := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, strings.Repeat("x", 256))
	}
	rejectFirst := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") == "Bearer tok1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "fresh")
	}
	truncate := func(w http.ResponseWriter, r *http.Request) {
		conn, brw, _ := http.NewResponseController(w).Hijack()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
		brw.Flush()
		conn.Close()
	}
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "the first ten")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	down := errors.New("the token endpoint is down")
	return []accessLogCase{
		{name: "ok", format: "json", upstream: ok, method: "GET", path: "/api/v1/items?key=secret"},
		{name: "token_error", format: "json", tokens: &goldenTokens{err: down}, upstream: ok, method: "GET", path: "/api/v1/items"},
		{name: "no_route", format: "json", upstream: ok, method: "DELETE", path: "/elsewhere/x"},
		{name: "replay", format: "json", upstream: rejectFirst, method: "POST", path: "/api/replayed", body: "a small body"},
		{name: "truncated", format: "json", upstream: truncate, method: "GET", path: "/api/cut"},
		{name: "replay_skipped", format: "json", upstream: ok, method: "PUT", path: "/api/big", body: strings.Repeat("b", 2048)},
		{name: "idle", format: "json", upstream: stall, method: "GET", path: "/api/stalls", idle: 20 * time.Millisecond},
		{name: "text_ok", format: "text", upstream: ok, method: "GET", path: "/api/v1/items"},
		{name: "text_token_error", format: "text", tokens: &goldenTokens{err: down}, upstream: ok, method: "GET", path: "/api/quoted path"},
		{name: "text_truncated", format: "text", upstream: truncate, method: "GET", path: "/api/cut"},
		{name: "text_replay_skipped", format: "text", upstream: ok, method: "PUT", path: "/api/big", body: strings.Repeat("b", 2048)},
	}
}

// pinEntry makes the logrus path's lines reproducible: it pins the time
// and the duration, which a clock would give.
type pinEntry struct{}

func (pinEntry) Levels() []logrus.Level { return logrus.AllLevels }
func (pinEntry) Fire(e *logrus.Entry) error {
	e.Time = accessLogTime
	if _, ok := e.Data["duration_ms"]; ok {
		e.Data["duration_ms"] = float64(accessLogDuration.Microseconds()) / 1000
	}
	return nil
}

// The access log's bytes are a promise to whatever parses them. The
// golden lines were recorded from the logrus path (logrus.Fields through
// jsonFormatter, or logrus's TextFormatter), before issue 16 replaced it
// with accessLog; both must still write them.
func TestAccessLogBytesAreUnchanged(t *testing.T) {
	for _, c := range accessLogCases() {
		for _, direct := range []bool{true, false} {
			name := c.name + "/logrus"
			if direct {
				name = c.name + "/direct"
			}
			t.Run(name, func(t *testing.T) { checkGolden(t, c, direct) })
		}
	}
}

func checkGolden(t *testing.T, c accessLogCase, direct bool) {
	got := accessLine(t, c, direct)
	want, err := os.ReadFile(filepath.Join("testdata", "accesslog", c.name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("access line changed\n got: %s\nwant: %s", got, want)
	}
}

// accessLine serves c's request through the proxy, from a fixed client
// address, and returns what was logged: by accessLog if direct, else
// through logrus.
func accessLine(t *testing.T, c accessLogCase, direct bool) []byte {
	t.Helper()
	api := httptest.NewServer(c.upstream)
	defer api.Close()
	target, _ := url.Parse(api.URL)
	var out bytes.Buffer
	logger := newLogger(config.Log{Level: "info", Format: c.format}, Options{Stderr: &out})
	logger.AddHook(pinEntry{})
	tokens := c.tokens
	if tokens == nil {
		tokens = &goldenTokens{}
	}
	idle := c.idle
	if idle == 0 {
		idle = time.Minute
	}
	opts := proxy.Options{Log: logger, MaxRequestBody: 1 << 20}
	if direct {
		opts.AccessLog = newAccessLog(logger, c.format)
		// The start, then the end of the request, as the hook pins them.
		calls := 0
		opts.Now = func() time.Time {
			calls++
			if calls == 1 {
				return accessLogTime.Add(-accessLogDuration)
			}
			return accessLogTime
		}
	}
	h, err := proxy.New([]proxy.Upstream{{
		Name: "api", Target: target, PathPrefix: "/api", Tokens: tokens,
		ReplayOn: []int{401}, MaxReplayBody: 1024, IdleTimeout: idle,
	}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		r.RemoteAddr = "192.0.2.10:4567"
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, srv.URL+strings.ReplaceAll(c.path, " ", "%20"), body)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := srv.Client().Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	<-served
	return out.Bytes()
}

// noAccessLog drops every line unseen: the floor the access log's cost is
// measured from.
type noAccessLog struct{}

func (noAccessLog) LogAccess(proxy.AccessLine) {}

// cannedAPI answers every request at once with 256 bytes, in memory, so
// that a request's allocations are the same from run to run.
type cannedAPI struct{}

func (cannedAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"256"}}, ContentLength: 256,
		Body: io.NopCloser(strings.NewReader(strings.Repeat("x", 256))), Request: r}, nil
}

// handlerAllocs is the allocations of one proxied GET, with access as the
// access log (nil: through logger, as logrus entries).
func handlerAllocs(t *testing.T, logger *logrus.Logger, access proxy.AccessLogger) float64 {
	t.Helper()
	target, _ := url.Parse("http://api.example")
	h, err := proxy.New([]proxy.Upstream{{Name: "api", Target: target, Tokens: &goldenTokens{}, Transport: cannedAPI{},
		ReplayOn: []int{401}, MaxReplayBody: 1 << 20, IdleTimeout: time.Minute}},
		proxy.Options{Log: logger, AccessLog: access})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/items", nil)
	w := httptest.NewRecorder()
	return testing.AllocsPerRun(2000, func() {
		w.Body.Reset()
		h.ServeHTTP(w, req)
	})
}

// The access log costs at most 3 allocations a request at info, and none
// at all when the level drops its lines (issue 16). Through logrus, as
// before, it costs 17 at info and 12 when dropped.
func TestAccessLogAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations over thousands of requests, without the race detector")
	}
	logger := func(level logrus.Level, format string) *logrus.Logger {
		l := newLogger(config.Log{Level: level.String(), Format: format}, Options{Stderr: io.Discard})
		return l
	}
	floor := handlerAllocs(t, logger(logrus.InfoLevel, "json"), noAccessLog{})
	for _, tt := range []struct {
		level  logrus.Level
		format string
		max    float64
	}{
		{logrus.InfoLevel, "json", 3},
		{logrus.InfoLevel, "text", 3},
		{logrus.WarnLevel, "json", 0},
		{logrus.WarnLevel, "text", 0},
	} {
		l := logger(tt.level, tt.format)
		got := handlerAllocs(t, l, newAccessLog(l, tt.format)) - floor
		viaLogrus := handlerAllocs(t, logger(tt.level, tt.format), nil) - floor
		t.Logf("%s, %s: %.1f allocations a request (through logrus: %.1f)", tt.level, tt.format, got, viaLogrus)
		if got > tt.max+0.1 {
			t.Errorf("%s, %s: the access log costs %.1f allocations a request, want at most %.0f", tt.level, tt.format, got, tt.max)
		}
	}
}
