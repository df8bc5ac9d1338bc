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
	kind   failureKind
	detail string
}

func (e *requestError) Error() string { return e.detail }

// Fault says whose doing a failure is: where an operator looks first.
type Fault string

const (
	// FaultClient: the app calling the proxy sent something it must not,
	// or went away, or stalled.
	FaultClient Fault = "client"
	// FaultUpstream: the API behind the proxy failed or broke off.
	FaultUpstream Fault = "upstream"
	// FaultTokenEndpoint: the identity provider refused, failed or was
	// not reached.
	FaultTokenEndpoint Fault = "token_endpoint"
	// FaultProxy: ours to fix: a login is needed, the token store is down.
	FaultProxy Fault = "proxy"
)

// Failure is how the proxy reports one kind of failure, the same way
// everywhere: Status and Code to the client (the JSON body's "error"),
// Code and Fault in the access log and the metrics, Reason on /readyz and
// /status, where "token_unavailable" alone would not say enough.
type Failure struct {
	// Status is what the client gets; 0 where the answer had already
	// begun when it failed (the status sent stands).
	Status int
	Code   string
	Reason string
	Fault  Fault
}

// failureKind indexes failures. The zero kind is no failure.
type failureKind uint8

const (
	failNone failureKind = iota
	failNoRoute
	failForbidden
	failUnauthorized
	failTooLarge
	failBadRequest
	failMethodNotAllowed
	failClientGone
	failBodyTimeout
	failBadBody
	failReauthorization
	failTokenStore
	failTokenBusy
	failTokenTimeout
	failTokenRefused
	failTokenBadResponse
	failTokenUnreachable
	failTokenCredentials
	failToken
	failUpstreamTimeout
	failUpstreamUnreachable
	failUpstreamIdle
	failUpstreamIdleHeld
	failUpstreamTruncated
	// The forward proxy's (forwardroute.go, tunnel.go).
	failProxyAuth
	failHostNotAllowed
	failMisdirected
	failTunnelHandshake
	failTooManyTunnels
	failCertificate
	numFailureKinds
)

// statusClientClosedRequest is nginx's 499: the client went away before
// the answer; nothing reaches it, but the access log says what happened.
const statusClientClosedRequest = 499

// failures is the one table from a kind of failure to what is said of it.
var failures = [numFailureKinds]Failure{
	failNoRoute:      {http.StatusNotFound, "no_route", "no_route", FaultClient},
	failForbidden:    {http.StatusForbidden, "forbidden", "forbidden", FaultClient},
	failUnauthorized: {http.StatusUnauthorized, "unauthorized", "unauthorized", FaultClient},
	failTooLarge:     {http.StatusRequestEntityTooLarge, "request_too_large", "request_too_large", FaultClient},
	failBadRequest:   {http.StatusBadRequest, "bad_request", "bad_request", FaultClient},
	failClientGone:   {statusClientClosedRequest, "client_closed_request", "client_closed_request", FaultClient},
	failBodyTimeout:  {http.StatusRequestTimeout, "request_body_timeout", "request_body_timeout", FaultClient},
	// Malformed chunking, or a body cut short.
	failBadBody: {http.StatusBadRequest, "bad_request_body", "bad_request_body", FaultClient},
	// TRACE and TRACK, which would echo the token (see echoesRequest).
	failMethodNotAllowed: {http.StatusMethodNotAllowed, "method_not_allowed", "method_not_allowed", FaultClient},
	// The refresh token is dead: only a person logging in helps.
	failReauthorization: {http.StatusBadGateway, "reauthorization_required", "reauthorization_required", FaultProxy},
	// Ours, not the upstream's: a pause until Redis is back.
	failTokenStore: {http.StatusServiceUnavailable, "token_store_unavailable", "token_store_unavailable", FaultProxy},
	// The token endpoint asked us to wait (429, 503); so do we.
	failTokenBusy:        {http.StatusServiceUnavailable, "token_unavailable", "token_endpoint_error", FaultTokenEndpoint},
	failTokenTimeout:     {http.StatusGatewayTimeout, "token_unavailable", "token_endpoint_unreachable", FaultTokenEndpoint},
	failTokenRefused:     {http.StatusBadGateway, "token_unavailable", "token_endpoint_error", FaultTokenEndpoint},
	failTokenBadResponse: {http.StatusBadGateway, "token_unavailable", "token_endpoint_bad_response", FaultTokenEndpoint},
	failTokenUnreachable: {http.StatusBadGateway, "token_unavailable", "token_endpoint_unreachable", FaultTokenEndpoint},
	// A token file the proxy reads for every token request (a client
	// assertion, a subject token) is missing or empty: nothing was sent,
	// and the fix is local (the path, or the platform that writes it).
	failTokenCredentials:    {http.StatusBadGateway, "token_unavailable", "token_credentials_unreadable", FaultProxy},
	failToken:               {http.StatusBadGateway, "token_unavailable", "token_unavailable", FaultProxy},
	failUpstreamTimeout:     {http.StatusGatewayTimeout, "upstream_timeout", "upstream_timeout", FaultUpstream},
	failUpstreamUnreachable: {http.StatusBadGateway, "upstream_unreachable", "upstream_unreachable", FaultUpstream},
	failUpstreamIdle:        {0, "upstream_idle_timeout", "upstream_idle_timeout", FaultUpstream},
	failUpstreamTruncated:   {0, "upstream_truncated", "upstream_truncated", FaultUpstream},
	// The idle timeout, in the body of an answer held back to decide on a
	// replay: nothing of it has reached the client.
	failUpstreamIdleHeld: {http.StatusGatewayTimeout, "upstream_idle_timeout", "upstream_idle_timeout", FaultUpstream},
	// The forward proxy's: no key in Proxy-Authorization; a host no
	// upstream lists (nothing was sent anywhere); inside a tunnel, a Host
	// or TLS name other than the tunnel's (RFC 9110 15.5.20); the
	// tunnels' cap; no certificate for a tunnel (the CA is ours to fix).
	failProxyAuth:       {http.StatusProxyAuthRequired, "proxy_authentication_required", "proxy_authentication_required", FaultClient},
	failHostNotAllowed:  {http.StatusForbidden, "host_not_allowed", "host_not_allowed", FaultClient},
	failMisdirected:     {http.StatusMisdirectedRequest, "misdirected_request", "misdirected_request", FaultClient},
	failTunnelHandshake: {0, "tunnel_handshake_failed", "tunnel_handshake_failed", FaultClient},
	failTooManyTunnels:  {http.StatusServiceUnavailable, "too_many_tunnels", "too_many_tunnels", FaultProxy},
	failCertificate:     {http.StatusBadGateway, "certificate_unavailable", "certificate_unavailable", FaultProxy},
}

// kindOf says what kind of failure err is. clientGone tells whether the
// client's request context is done.
func kindOf(err error, clientGone bool) failureKind {
	var reqErr *requestError
	var tokErr *TokenError
	var maxBytes *http.MaxBytesError
	var bodyErr *clientBodyError
	var heldIdle *heldIdleError
	switch {
	case errors.As(err, &reqErr):
		return reqErr.kind
	case clientGone && errors.Is(err, context.Canceled):
		// Before the token cases: a client that left while its request
		// waited for a token is the client's doing, not the endpoint's.
		return failClientGone
	case errors.As(err, &tokErr):
		return tokenKindOf(err)
	case errors.As(err, &maxBytes):
		return failTooLarge
	case errors.As(err, &bodyErr) && isTimeout(err):
		return failBodyTimeout
	case errors.As(err, &bodyErr):
		return failBadBody
	case errors.As(err, &heldIdle):
		return failUpstreamIdleHeld
	case isTimeout(err):
		return failUpstreamTimeout
	default:
		return failUpstreamUnreachable
	}
}

// tokenKindOf says why a token source gave no token.
func tokenKindOf(err error) failureKind {
	var re *auth.RetrieveError
	var netErr net.Error
	switch {
	case errors.Is(err, auth.ErrReauthorizationRequired):
		return failReauthorization
	case errors.Is(err, auth.ErrSharedStoreUnavailable):
		return failTokenStore
	case errors.Is(err, auth.ErrTokenFile):
		return failTokenCredentials
	case errors.As(err, &re) && (re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusServiceUnavailable):
		return failTokenBusy
	case isTimeout(err):
		return failTokenTimeout
	case errors.As(err, &re):
		return failTokenRefused
	case errors.Is(err, auth.ErrBadResponse):
		return failTokenBadResponse
	case errors.As(err, &netErr):
		return failTokenUnreachable
	default:
		return failToken
	}
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// TokenFailure is the failures table's row for an error from a token
// source (TokenSource.Token): what the proxy reports of it, for readiness
// checks and status pages, which ask for a token outside of any request.
func TokenFailure(err error) Failure { return failures[tokenKindOf(err)] }

// forwardedMethods is the Allow header of a 405 (RFC 9110 15.5.6 wants
// one): the standard methods the proxy forwards. Others, such as WebDAV's,
// are forwarded too; whether the upstream takes them is its own answer.
const forwardedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// errorBody is the JSON every error answer carries. Detail is built from
// error texts that never hold a secret: auth redacts what the token
// endpoint echoes, and tokens never appear in errors.
type errorBody struct {
	Error    string `json:"error"`
	Upstream string `json:"upstream,omitempty"`
	Detail   string `json:"detail"`
}

// writeError answers r with err as JSON and records the failure for the
// access log.
func writeError(w http.ResponseWriter, r *http.Request, upstream string, err error) {
	info := infoFrom(r.Context())
	if body := info.clientBody(); body != nil {
		// Once the client's body has failed, whatever failed after it
		// (the upstream request reading it, the connection net/http
		// closed) is its consequence.
		if bodyErr := body.failure(); bodyErr != nil {
			err = bodyErr
		}
	}
	kind := kindOf(err, r.Context().Err() != nil)
	info.fail, info.err = kind, err
	f := failures[kind]
	if kind == failClientGone {
		w.WriteHeader(f.Status)
		return
	}
	var backoff *auth.BackoffError
	if errors.As(err, &backoff) {
		// The token endpoint is not asked again before then.
		secs := math.Ceil(backoff.Wait.Seconds())
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
	}
	switch kind {
	case failMethodNotAllowed:
		w.Header().Set("Allow", forwardedMethods)
	case failProxyAuth:
		w.Header().Set("Proxy-Authenticate", `Basic realm="authproxy"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(f.Status)
	json.NewEncoder(w).Encode(errorBody{Error: f.Code, Upstream: upstream, Detail: err.Error()})
}
