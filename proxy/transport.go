package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
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
	budget   *ReplayBudget // shared by every upstream; nil: unbounded
	// idleTimeout cuts off a response body that stalls; zero: never.
	idleTimeout time.Duration
	// log receives what the transport decides on its own; now is its
	// clock (nil: time.Now).
	log logrus.FieldLogger
	now func() time.Time
	// rejected is where a just-fetched token was refused too: a 401 there
	// is passed back without a refresh.
	rejected rejectedPaths
	// perRequest is the header step made anew for each request, after
	// the token's cached header, with the URL as rewritten: a DPoP proof.
	// nil for Bearer.
	perRequest requestHeader

	// rendered caches the header value of the current token, so the hot
	// path formats nothing.
	rendered atomic.Pointer[renderedToken]
	// idleTimers are lent to response bodies for their idle timeout.
	idleTimers idleTimers
	// tracer records replays as spans (see trace.go); nil: off.
	tracer trace.Tracer
}

type renderedToken struct {
	tok   *auth.Token
	value []string // the header's values: the one rendered
	err   error    // the value cannot be sent in a header
}

var _ http.RoundTripper = (*tokenTransport)(nil)

// RoundTrip sets the token on req itself rather than on a copy:
// ReverseProxy hands its transport a request of its own (Rewrite's
// pr.Out, with a Header of its own), and this transport serves only
// ReverseProxy.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	st := stateFrom(ctx)
	tok, err := t.tokens.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, &TokenError{Upstream: t.upstream, Err: err}
	}
	value, err := t.headerValue(tok)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	t.setHeaders(req.Header, value)
	if t.perRequest != nil {
		if err := t.perRequest.set(req, tok); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	// A body that may need replaying is copied as it streams upstream.
	var copying *copyingBody
	replayable := len(t.replayOn) > 0 || t.perRequest != nil
	if replayable && req.Body != nil && req.Body != http.NoBody {
		skip := skipMaxBody
		if req.ContentLength <= t.maxBody {
			skip = skipMemoryBudget
			// serve has made the bodies of a request with one: ReverseProxy
			// sends no body of length zero, which is all serve leaves out.
			if b := st.info.bodies; b.copying.init(req.Body, t.maxBody, req.ContentLength, t.budget) {
				copying, b.copyOn = &b.copying, true
			}
		}
		if copying != nil {
			req.Body = copying
			req.GetBody = nil
		} else {
			replayable = false
			st.info.replaySkip = skip
		}
	}
	resp, err := t.base.RoundTrip(req)
	switch {
	case err == nil && replayable:
		resp, err = t.decideAndSend(ctx, req, tok, copying, resp)
	case err == nil && t.perRequest != nil:
		t.perRequest.observe(req, resp) // a nonce, even on an answer that cannot be retried
	}
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		// The body of a 101 is the upgraded connection ReverseProxy writes
		// to: it stays bare, and may idle for ever.
		if copying != nil {
			copying.release()
		}
		return resp, err
	}
	body := &st.body
	body.init(st, resp.Body, resp.ContentLength, t.idleTimeout, &t.idleTimers)
	body.copying = copying
	resp.Body = body
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// replayDecision is what an upstream's answer calls for.
type replayDecision int

const (
	// pass: the answer goes back to the client.
	pass replayDecision = iota
	// refreshAndReplay: the token is stale (a replay status); refresh it
	// and send the request once more (see replay).
	refreshAndReplay
	// retryWithNewHeader: the same token, with a new per-request header
	// (a DPoP proof with the nonce the server just gave); no refresh.
	retryWithNewHeader
)

// decide is the one replay decision: a per-request header's challenge
// first, at most once per request (headerRetried: it was), then the
// replay statuses. The per-request step sees every answer, so that a
// nonce is kept from each.
func (t *tokenTransport) decide(req *http.Request, resp *http.Response, headerRetried bool) replayDecision {
	if t.perRequest != nil && t.perRequest.observe(req, resp) {
		if headerRetried {
			// Asked again: the token is not what is refused, so no
			// refresh either; the answer goes back as it came.
			return pass
		}
		return retryWithNewHeader
	}
	if slices.Contains(t.replayOn, resp.StatusCode) {
		return refreshAndReplay
	}
	return pass
}

// decideAndSend acts on decide: each of the two retries at most once,
// the header's first, so that no answer makes the proxy loop.
func (t *tokenTransport) decideAndSend(ctx context.Context, req *http.Request, tok *auth.Token, copying *copyingBody, resp *http.Response) (*http.Response, error) {
	switch t.decide(req, resp, false) {
	case retryWithNewHeader:
		resp, err := t.retryHeader(ctx, req, tok, copying, resp)
		if err != nil || t.decide(req, resp, true) != refreshAndReplay {
			return resp, err
		}
		return t.replay(ctx, req, tok, copying, resp)
	case refreshAndReplay:
		return t.replay(ctx, req, tok, copying, resp)
	}
	return resp, nil
}

// holdForResend keeps a rejected answer (under the idle timeout: its
// body is read before anything reaches the client) and the request's
// whole body, for the replay after a refresh and for a retry with a new
// per-request header alike. ok is false, with the rejection to send back
// as it came, when either cannot be had whole; on an error, the
// rejection is already closed and nil.
func (t *tokenTransport) holdForResend(ctx context.Context, rejected *http.Response, copying *copyingBody) (_ *http.Response, body []byte, ok bool, _ error) {
	rejected, kept, err := keepResponse(rejected, t.idleTimeout, &t.idleTimers)
	if err != nil {
		return nil, nil, false, err
	}
	if !kept {
		return rejected, nil, false, nil
	}
	if copying == nil {
		return rejected, nil, true, nil
	}
	if body, ok, err = copying.complete(ctx); err != nil {
		rejected.Body.Close()
		return nil, nil, false, err
	}
	return rejected, body, ok, nil
}

// replay handles a rejected token: refresh it and send the request once
// more with the same body. The rejection goes back to the client as it
// came when the body cannot be had whole (over max_body), and when a
// token fetched just before was refused on the same path too: the token
// is not what the upstream objects to there (see rejectedPaths).
func (t *tokenTransport) replay(ctx context.Context, req *http.Request, stale *auth.Token, copying *copyingBody, rejected *http.Response) (*http.Response, error) {
	key := req.Method + " " + req.URL.Path
	if skip, bound := t.rejected.skip(ctx, stale, key, t.clock()); skip {
		t.atBound(bound)
		return rejected, nil
	}
	rejected, body, ok, err := t.holdForResend(ctx, rejected, copying)
	if err != nil || !ok {
		return rejected, err
	}
	ctx, span := t.startReplay(ctx, rejected.StatusCode)
	defer span.End()
	trial := t.rejected.refreshing(stale, key)
	t.tokens.Invalidate(stale)
	fresh, err := t.tokens.Token(ctx)
	if err != nil {
		t.rejected.fetched(trial, nil, key)
		return nil, &TokenError{Upstream: t.upstream, Err: err}
	}
	t.rejected.fetched(trial, fresh, key)
	value, err := t.headerValue(fresh)
	if err != nil {
		t.rejected.failed(fresh, key)
		return nil, err
	}
	// A copy with headers of its own: the first request may still be in
	// the hands of the transport that sent it.
	again := resend(ctx, req, body, copying != nil)
	t.setHeaders(again.Header, value)
	if t.perRequest != nil {
		// A new proof, for the fresh token: the first one was spent.
		if err := t.perRequest.set(again, fresh); err != nil {
			t.rejected.failed(fresh, key)
			return nil, err
		}
	}
	resp, err := t.base.RoundTrip(again)
	if err == nil && t.perRequest != nil {
		t.perRequest.observe(again, resp)
	}
	outcome := "error"
	switch {
	case err != nil:
		t.rejected.failed(fresh, key)
	case slices.Contains(t.replayOn, resp.StatusCode):
		outcome = "rejected"
		t.atBound(t.rejected.refused(stale, fresh, key, t.clock()))
	default:
		outcome = "success"
		t.rejected.accepted(fresh, key)
	}
	infoFrom(ctx).replay = outcome
	endReplay(span, outcome)
	return resp, err
}

// resend is req to send once more, with headers of its own (the first
// request may still be in the hands of the transport that sent it) and,
// if it had one, the kept body.
func resend(ctx context.Context, req *http.Request, body []byte, hasBody bool) *http.Request {
	again := req.WithContext(ctx)
	again.Header = req.Header.Clone()
	if hasBody {
		again.Body = io.NopCloser(bytes.NewReader(body))
		again.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		again.ContentLength = int64(len(body))
	}
	return again
}

// atBound says, once for each token that reaches it, that refreshes
// after a 401 are now rationed.
func (t *tokenTransport) atBound(reached bool) {
	if reached && t.log != nil {
		t.log.WithField("paths", maxRejectedPaths).Warn("the upstream refused freshly fetched tokens on as many paths: " +
			"a 401 on yet another path now refreshes this token at most once a minute, until it changes")
	}
}

func (t *tokenTransport) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// setHeaders sets the token's header and the static headers on h. The
// values' slices are shared, never written to: http.Header.Set would
// allocate one for each request.
func (t *tokenTransport) setHeaders(h http.Header, value []string) {
	h[t.header] = value
	for k, v := range t.static {
		h[k] = v
	}
}

// headerValue renders tok's header value, once per token. A value that
// net/http would refuse to send (a control character, from the token or
// the format) is a token error, not the upstream's: it never leaves.
func (t *tokenTransport) headerValue(tok *auth.Token) ([]string, error) {
	if r := t.rendered.Load(); r != nil && r.tok == tok {
		return r.value, r.err
	}
	value := t.render(tok)
	r := &renderedToken{tok: tok, value: []string{value}}
	if !headerSafe(value) {
		r.value, r.err = nil, &TokenError{Upstream: t.upstream, Err: fmt.Errorf(
			"%w: the %s value made from the token cannot be sent in a header (it holds a control character such as CR, LF or NUL)",
			auth.ErrBadResponse, t.header)}
	}
	t.rendered.Store(r)
	return r.value, r.err
}

// headerSafe reports whether s may be sent as a header value (RFC 9110
// 5.5: no control character but HTAB), as net/http checks before sending.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// headerTemplate compiles an inject.format such as "Bearer {token}" or
// "{token_type} {token}" into a renderer.
func headerTemplate(format string) func(*auth.Token) string {
	return func(tok *auth.Token) string {
		return strings.NewReplacer("{token}", tok.AccessToken, "{token_type}", tok.Type()).Replace(format)
	}
}
