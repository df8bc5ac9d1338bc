package proxy

import (
	"context"
	"net/http"

	"github.com/authproxy/authproxy/auth"
)

// requestHeader is the transport's per-request header step: what a
// request needs besides its token's header, which is rendered once per
// token and cached. It is nil for Bearer tokens; with DPoP it is a proof
// for exactly this request.
type requestHeader interface {
	// set sets the header on req, whose URL is as sent upstream, for tok.
	// It is called for every request sent, retries and replays included.
	set(req *http.Request, tok *auth.Token) error
	// observe notes what the upstream's answer to req says (a new DPoP
	// nonce) and reports whether it asks for the same token with a new
	// header: see retryWithNewHeader.
	observe(req *http.Request, resp *http.Response) (retry bool)
}

var _ requestHeader = dpopProof{}

// dpopProof sets `DPoP: <proof>` (RFC 9449 7.1): htm and htu of the
// request as sent upstream, ath of its token, the upstream's latest
// nonce. Signing takes no lock; each request signs its own. Whatever DPoP
// header the client sent is replaced: the client's proof (or anything
// else it put there) never reaches the upstream.
type dpopProof struct {
	key      *auth.DPoPKey
	upstream string
}

func (d dpopProof) set(req *http.Request, tok *auth.Token) error {
	proof, err := d.key.Proof(req.Method, req.URL, tok.AccessToken)
	if err != nil {
		return &TokenError{Upstream: d.upstream, Err: err}
	}
	req.Header["Dpop"] = []string{proof}
	return nil
}

// observe keeps a DPoP-Nonce the upstream sent with any answer (RFC 9449
// 9), and reports a 401 that asks for a proof with it.
func (d dpopProof) observe(req *http.Request, resp *http.Response) bool {
	d.key.ObserveNonce(req.URL, resp.Header)
	return auth.UsesNonceChallenge(resp.StatusCode, resp.Header)
}

// retryHeader sends req once more with the same token and a new
// per-request header: the upstream asked for a DPoP proof with its nonce,
// which observe has kept. The token is not refreshed: it was not what
// the upstream refused. As for a replay, the answer goes back as it came
// when the body cannot be had whole.
func (t *tokenTransport) retryHeader(ctx context.Context, req *http.Request, tok *auth.Token, copying *copyingBody, rejected *http.Response) (*http.Response, error) {
	rejected, body, ok, err := t.holdForResend(ctx, rejected, copying)
	if err != nil || !ok {
		return rejected, err
	}
	again := resend(ctx, req, body, copying != nil)
	if err := t.perRequest.set(again, tok); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(again)
}
