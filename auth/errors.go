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

// SettingError is an error of building a source that one of its Settings
// caused: Setting names the field at fault, so that a caller that filled
// Settings from a file of its own (app, from proxy.yaml) names the key
// behind it without reading the message. The message is Err's alone, so
// that wrapping it changes nothing printed. Test with errors.As.
type SettingError struct {
	Setting Setting
	Err     error
}

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Setting names the field of Settings that a SettingError blames.
type Setting string

// The Settings that building a source checks, and what each blames.
const (
	SettingPrivateKeyFile Setting = "PrivateKeyFile" // the key file does not read or parse (ReadKeyFile)
	SettingSigningAlg     Setting = "SigningAlg"     // the key cannot sign with it (CheckSigningAlg)
	SettingClientSecret   Setting = "ClientSecret"   // client_secret_jwt's secret does not fit its algorithm (CheckSecretAlg)
	SettingTLS            Setting = "TLS"            // the token endpoint's TLS files do not load (NewTLSConfig)
	SettingDPoPKeyFile    Setting = "DPoPKeyFile"    // the DPoP key file does not read or parse (ReadPrivateKey)
	SettingDPoPSigningAlg Setting = "DPoPSigningAlg" // the DPoP key cannot sign with it (NewDPoPKey)
)
