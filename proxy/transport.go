package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// TokenSource is what the proxy needs of a token cache: a token for each
// request, and a way to say that the upstream rejected one. auth.Cache
// implements it.
type TokenSource interface {
	Token(ctx context.Context) (*auth.Token, error)
	// Invalidate drops stale if it is still the current token.
	Invalidate(stale *auth.Token)
}

var _ TokenSource = (*auth.Cache)(nil)

// tokenTransport attaches the upstream's token to each request and, when
// the upstream answers with a replay status, refreshes the token and
// sends the request once more. It runs after ReverseProxy has removed
// hop-by-hop headers, so a client's "Connection: Authorization" cannot
// strip the header set here.
type tokenTransport struct {
	base     http.RoundTripper
	upstream string
	tokens   TokenSource
	header   string
	render   func(*auth.Token) string
	static   http.Header // set on every request, after the token
	replayOn []int
	maxBody  int64
	// idleTimeout cuts off a response body that stalls; zero: never.
	idleTimeout time.Duration

	// rendered caches the header value of the current token, so the hot
	// path formats nothing.
	rendered atomic.Pointer[renderedToken]
}

type renderedToken struct {
	tok   *auth.Token
	value string
}

var _ http.RoundTripper = (*tokenTransport)(nil)

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replay, err := t.keepBody(req)
	if err != nil {
		return nil, err
	}
	// With an idle timeout the upstream request gets its own cancel, which
	// the returned body owns; without, there is nothing to release.
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if t.idleTimeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		cancel = stop
	}
	tok, err := t.tokens.Token(ctx)
	if err != nil {
		cancel()
		replay.discard()
		return nil, &TokenError{Upstream: t.upstream, Err: err}
	}
	resp, err := t.base.RoundTrip(t.prepare(ctx, req, tok, replay))
	if err == nil && replay.ok && slices.Contains(t.replayOn, resp.StatusCode) {
		// The upstream rejected the token. Drain a little so the
		// connection can be reused, then try once more with a fresh token.
		io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
		t.tokens.Invalidate(tok)
		fresh, terr := t.tokens.Token(ctx)
		if terr != nil {
			cancel()
			return nil, &TokenError{Upstream: t.upstream, Err: terr}
		}
		if info := infoFrom(ctx); info != nil {
			info.replayed = true
		}
		resp, err = t.base.RoundTrip(t.prepare(ctx, req, fresh, replay))
	}
	switch {
	case err != nil:
		cancel()
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// The body is the upgraded connection: it may idle for ever.
		if conn, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = upgradedConn{conn, cancel}
		} else {
			cancel()
		}
	case t.idleTimeout > 0:
		resp.Body = newIdleTimeoutBody(resp.Body, t.idleTimeout, cancel, infoFrom(ctx))
	}
	return resp, err
}

// upgradedConn releases the request's context when the upgraded
// connection closes. It stays an io.ReadWriteCloser, which ReverseProxy
// requires of a 101's body.
type upgradedConn struct {
	io.ReadWriteCloser
	cancel context.CancelFunc
}

func (c upgradedConn) Close() error {
	defer c.cancel()
	return c.ReadWriteCloser.Close()
}

// prepare returns a copy of req carrying tok, with the kept body.
func (t *tokenTransport) prepare(ctx context.Context, req *http.Request, tok *auth.Token, replay replayBody) *http.Request {
	// A shallow copy with its own headers: the URL and the rest are not
	// changed here, and ReverseProxy has already made req a copy of the
	// client's request.
	out := req.WithContext(ctx)
	out.Header = req.Header.Clone()
	out.Header.Set(t.header, t.headerValue(tok))
	for k, v := range t.static {
		out.Header[k] = v
	}
	if replay.ok && replay.buf != nil {
		out.Body = io.NopCloser(bytes.NewReader(replay.buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(replay.buf)), nil }
		out.ContentLength = int64(len(replay.buf))
	} else if !replay.ok {
		out.Body = replay.stream
	}
	return out
}

func (t *tokenTransport) headerValue(tok *auth.Token) string {
	if r := t.rendered.Load(); r != nil && r.tok == tok {
		return r.value
	}
	r := &renderedToken{tok: tok, value: t.render(tok)}
	t.rendered.Store(r)
	return r.value
}

// replayBody is a request body as kept for a possible replay.
type replayBody struct {
	ok     bool          // the request can be sent twice
	buf    []byte        // the whole body, when ok and there is one
	stream io.ReadCloser // the body to stream once, when !ok
}

func (b replayBody) discard() {
	if b.stream != nil {
		b.stream.Close()
	}
}

// keepBody reads a body of up to maxBody bytes so that it can be sent
// again; a larger one streams through once and is not replayed.
func (t *tokenTransport) keepBody(req *http.Request) (replayBody, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return replayBody{ok: true}, nil
	}
	if len(t.replayOn) == 0 || req.ContentLength > t.maxBody {
		return replayBody{stream: req.Body}, nil
	}
	var buf []byte
	var err error
	if req.ContentLength > 0 {
		// Known size: one allocation, no growing and copying.
		buf = make([]byte, req.ContentLength)
		_, err = io.ReadFull(req.Body, buf)
	} else {
		buf, err = io.ReadAll(io.LimitReader(req.Body, t.maxBody+1))
	}
	if err != nil {
		req.Body.Close()
		return replayBody{}, err
	}
	if int64(len(buf)) > t.maxBody {
		return replayBody{stream: struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}}, nil
	}
	req.Body.Close()
	return replayBody{ok: true, buf: buf}, nil
}

// headerTemplate compiles an inject.format such as "Bearer {token}" or
// "{token_type} {token}" into a renderer.
func headerTemplate(format string) func(*auth.Token) string {
	return func(tok *auth.Token) string {
		return strings.NewReplacer("{token}", tok.AccessToken, "{token_type}", tok.Type()).Replace(format)
	}
}
