package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"

	"github.com/authproxy/authproxy/auth"
)

// TokenError means no token could be had for an upstream; the request
// was not sent.
type TokenError struct {
	Upstream string
	Err      error
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("get token for %q: %v", e.Upstream, e.Err)
}

func (e *TokenError) Unwrap() error { return e.Err }

// requestError is a request the proxy refuses to forward.
type requestError struct {
	status int
	code   string
	detail string
}

func (e *requestError) Error() string { return e.detail }

var (
	errNoRoute = &requestError{http.StatusNotFound, "no_route", "no upstream is configured for this path"}
)

// statusClientClosedRequest is nginx's 499: the client went away before
// the answer; nothing reaches it, but the access log says what happened.
const statusClientClosedRequest = 499

// classify is the one place that maps an error to the status and error code
// a client sees. Everything the proxy answers itself goes through it.
func classify(r *http.Request, err error) (status int, code string) {
	var reqErr *requestError
	var tokErr *TokenError
	var retrieveErr *auth.RetrieveError
	var maxBytes *http.MaxBytesError
	var bodyErr *clientBodyError
	var netErr net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
	switch {
	case errors.As(err, &reqErr):
		return reqErr.status, reqErr.code
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// Before the token cases: a client that left while its request
		// waited for a token is the client's doing, not the endpoint's.
		return statusClientClosedRequest, "client_closed_request"
	case errors.As(err, &tokErr):
		switch {
		case errors.Is(err, auth.ErrReauthorizationRequired):
			return http.StatusBadGateway, "reauthorization_required"
		case errors.Is(err, auth.ErrSharedStoreUnavailable):
			// Ours, not the upstream's: a pause until Redis is back.
			return http.StatusServiceUnavailable, "token_store_unavailable"
		case errors.As(err, &retrieveErr) &&
			(retrieveErr.StatusCode == http.StatusTooManyRequests || retrieveErr.StatusCode == http.StatusServiceUnavailable):
			// The token endpoint asked us to wait; so do we.
			return http.StatusServiceUnavailable, "token_unavailable"
		case timeout:
			return http.StatusGatewayTimeout, "token_unavailable"
		}
		return http.StatusBadGateway, "token_unavailable"
	case errors.As(err, &maxBytes):
		return errTooLarge.status, errTooLarge.code
	case errors.As(err, &bodyErr) && timeout:
		return http.StatusRequestTimeout, "request_body_timeout"
	case errors.As(err, &bodyErr):
		// Malformed chunking, or a body cut short: the client's fault.
		return http.StatusBadRequest, "bad_request_body"
	case timeout:
		return http.StatusGatewayTimeout, "upstream_timeout"
	default:
		return http.StatusBadGateway, "upstream_unreachable"
	}
}

// errorBody is the JSON every error answer carries. Detail is built from
// error texts that never hold a secret: auth redacts what the token
// endpoint echoes, and tokens never appear in errors.
type errorBody struct {
	Error    string `json:"error"`
	Upstream string `json:"upstream,omitempty"`
	Detail   string `json:"detail"`
}

// writeError answers r with err as JSON and records the code for the
// access log.
func writeError(w http.ResponseWriter, r *http.Request, upstream string, err error) {
	info := infoFrom(r.Context())
	if info != nil && info.body != nil {
		// Once the client's body has failed, whatever failed after it
		// (the upstream request reading it, the connection net/http
		// closed) is its consequence.
		if bodyErr := info.body.failure(); bodyErr != nil {
			err = bodyErr
		}
	}
	status, code := classify(r, err)
	if info != nil {
		info.errCode = code
		info.err = err
	}
	if status == statusClientClosedRequest {
		w.WriteHeader(status)
		return
	}
	var backoff *auth.BackoffError
	if errors.As(err, &backoff) {
		// The token endpoint is not asked again before then.
		secs := math.Ceil(backoff.Wait.Seconds())
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: code, Upstream: upstream, Detail: err.Error()})
}
