package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetrieveError is a token endpoint's refusal: a non-2xx status, or a
// 2xx whose body carries an RFC 6749 5.2 error. Its message holds the
// status and the endpoint's error fields, never the request's secrets.
type RetrieveError struct {
	// StatusCode is the HTTP status of the token response.
	StatusCode int
	// ErrorCode is the RFC 6749 5.2 "error" field ("invalid_client",
	// "invalid_grant", ...); empty when the body had none.
	ErrorCode string
	// ErrorDescription is the "error_description" field, if any.
	ErrorDescription string
	// RetryAfter is the endpoint's Retry-After on a 429 or 503 (RFC 9110
	// 10.2.3), as a duration; zero when it sent none.
	RetryAfter time.Duration
}

func (e *RetrieveError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token endpoint answered %d", e.StatusCode)
	if e.ErrorCode != "" {
		b.WriteString(" ")
		b.WriteString(e.ErrorCode)
	}
	if e.ErrorDescription != "" {
		b.WriteString(": ")
		b.WriteString(e.ErrorDescription)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(0, time.Duration(min(secs, 1<<30))*time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now))
	}
	return 0
}

// ErrBadResponse marks a token response that could not be used: not JSON,
// truncated, too large, or without an access_token. Test with errors.Is.
var ErrBadResponse = errors.New("unusable token response")

// badResponse wraps ErrBadResponse with what was wrong.
func badResponse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadResponse, fmt.Sprintf(format, args...))
}
