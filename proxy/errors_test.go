package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// Every row of the failure table: an error of that kind is classified as
// it, and the row says what the client, the log and /readyz are told.
func TestFailureTable(t *testing.T) {
	token := func(err error) error { return &TokenError{Upstream: "api", Err: err} }
	refused := &auth.RetrieveError{StatusCode: 401, ErrorCode: "invalid_client"}
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	timeoutErr := &url.Error{Op: "Post", URL: "http://x", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		kind       failureKind
		err        error
		clientGone bool
		want       Failure
	}{
		{failNoRoute, errNoRoute, false, Failure{404, "no_route", "no_route", FaultClient}},
		{failForbidden, errForbidden, false, Failure{403, "forbidden", "forbidden", FaultClient}},
		{failUnauthorized, errUnauthorized, false, Failure{401, "unauthorized", "unauthorized", FaultClient}},
		{failTooLarge, &http.MaxBytesError{Limit: 1}, false, Failure{413, "request_too_large", "request_too_large", FaultClient}},
		{failBadRequest, errDotSegment, false, Failure{400, "bad_request", "bad_request", FaultClient}},
		{failMethodNotAllowed, errTrace, false, Failure{405, "method_not_allowed", "method_not_allowed", FaultClient}},
		{failClientGone, token(context.Canceled), true, Failure{499, "client_closed_request", "client_closed_request", FaultClient}},
		{failBodyTimeout, &clientBodyError{os.ErrDeadlineExceeded}, false, Failure{408, "request_body_timeout", "request_body_timeout", FaultClient}},
		{failBadBody, fmt.Errorf("copy: %w", &clientBodyError{errors.New("invalid byte in chunk length")}), false,
			Failure{400, "bad_request_body", "bad_request_body", FaultClient}},
		{failReauthorization, token(fmt.Errorf("%w: run login", auth.ErrReauthorizationRequired)), false,
			Failure{502, "reauthorization_required", "reauthorization_required", FaultProxy}},
		{failTokenStore, token(fmt.Errorf("%w: down", auth.ErrSharedStoreUnavailable)), false,
			Failure{503, "token_store_unavailable", "token_store_unavailable", FaultProxy}},
		{failTokenBusy, token(&auth.BackoffError{Err: &auth.RetrieveError{StatusCode: 429}}), false,
			Failure{503, "token_unavailable", "token_endpoint_error", FaultTokenEndpoint}},
		{failTokenTimeout, token(timeoutErr), false, Failure{504, "token_unavailable", "token_endpoint_unreachable", FaultTokenEndpoint}},
		{failTokenRefused, token(refused), false, Failure{502, "token_unavailable", "token_endpoint_error", FaultTokenEndpoint}},
		{failTokenBadResponse, token(fmt.Errorf("%w: not JSON", auth.ErrBadResponse)), false,
			Failure{502, "token_unavailable", "token_endpoint_bad_response", FaultTokenEndpoint}},
		{failTokenUnreachable, token(netErr), false, Failure{502, "token_unavailable", "token_endpoint_unreachable", FaultTokenEndpoint}},
		// The platform's token file is not there (yet): ours to fix, and
		// nothing was sent to the token endpoint.
		{failTokenCredentials, token(&auth.BackoffError{Err: fmt.Errorf("assertion: %w: read /t: no such file", auth.ErrTokenFile)}), false,
			Failure{502, "token_unavailable", "token_credentials_unreadable", FaultProxy}},
		{failToken, token(errors.New("token source returned no token")), false, Failure{502, "token_unavailable", "token_unavailable", FaultProxy}},
		// Without a client gone, a cancelled token wait is the proxy's.
		{failToken, token(context.Canceled), false, Failure{502, "token_unavailable", "token_unavailable", FaultProxy}},
		{failUpstreamTimeout, timeoutErr, false, Failure{504, "upstream_timeout", "upstream_timeout", FaultUpstream}},
		{failUpstreamUnreachable, netErr, false, Failure{502, "upstream_unreachable", "upstream_unreachable", FaultUpstream}},
		{failUpstreamIdle, nil, false, Failure{0, "upstream_idle_timeout", "upstream_idle_timeout", FaultUpstream}},
		{failUpstreamIdleHeld, &heldIdleError{time.Second, 401}, false, Failure{504, "upstream_idle_timeout", "upstream_idle_timeout", FaultUpstream}},
		{failUpstreamTruncated, nil, false, Failure{0, "upstream_truncated", "upstream_truncated", FaultUpstream}},
		{failProxyAuth, errProxyAuth, false, Failure{407, "proxy_authentication_required", "proxy_authentication_required", FaultClient}},
		{failHostNotAllowed, hostNotAllowed("x.example:443"), false, Failure{403, "host_not_allowed", "host_not_allowed", FaultClient}},
		{failMisdirected, &requestError{failMisdirected, "x"}, false, Failure{421, "misdirected_request", "misdirected_request", FaultClient}},
		{failTunnelHandshake, nil, false, Failure{0, "tunnel_handshake_failed", "tunnel_handshake_failed", FaultClient}},
		{failTooManyTunnels, errTooManyTunnels, false, Failure{503, "too_many_tunnels", "too_many_tunnels", FaultProxy}},
		{failCertificate, &requestError{failCertificate, "x"}, false, Failure{502, "certificate_unavailable", "certificate_unavailable", FaultProxy}},
	}
	covered := map[failureKind]bool{}
	for _, tt := range tests {
		covered[tt.kind] = true
		t.Run(tt.want.Code+"/"+tt.want.Reason, func(t *testing.T) {
			if tt.err != nil {
				if got := kindOf(tt.err, tt.clientGone); got != tt.kind {
					t.Errorf("kindOf(%v) = %d, want %d", tt.err, got, tt.kind)
				}
			}
			if got := failures[tt.kind]; got != tt.want {
				t.Errorf("failures[%d] = %+v, want %+v", tt.kind, got, tt.want)
			}
		})
	}
	for k := failNone + 1; k < numFailureKinds; k++ {
		if !covered[k] {
			t.Errorf("kind %d (%+v) has no row in this test", k, failures[k])
		}
	}
}

// Readiness asks for a token outside any request: its errors are told as
// the token rows say, a timeout of the probe itself included.
func TestTokenFailure(t *testing.T) {
	for err, want := range map[error]string{
		context.DeadlineExceeded:                                         "token_endpoint_unreachable",
		fmt.Errorf("%w: run login", auth.ErrReauthorizationRequired):     "reauthorization_required",
		&auth.RetrieveError{StatusCode: 400, ErrorCode: "invalid_scope"}: "token_endpoint_error",
		fmt.Errorf("%w: /t is empty", auth.ErrTokenFile):                 "token_credentials_unreadable",
	} {
		if got := TokenFailure(err).Reason; got != want {
			t.Errorf("TokenFailure(%v).Reason = %q, want %q", err, got, want)
		}
	}
}
