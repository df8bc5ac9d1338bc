package auth

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// attempt is one token request being put together: its fields, in the
// order they are sent, and its headers. Each attempt is built anew, so
// that a retry carries a fresh assertion and the files' current content.
type attempt struct {
	fields [][2]string
	header http.Header
	// secrets are what the attempt carries beside its secret fields (see
	// secretFields), such as the HTTP Basic credentials; every error of
	// the attempt is scrubbed of them.
	secrets []string
}

func (a *attempt) add(name, value string) { a.fields = append(a.fields, [2]string{name, value}) }

func (a *attempt) has(name string) bool {
	return slices.ContainsFunc(a.fields, func(f [2]string) bool { return f[0] == name })
}

// secretFields are the token request's fields whose values never appear
// in an error: the credentials of the client, of the grant and of the
// user, and the code of an authorization.
var secretFields = map[string]bool{
	"client_secret": true, "client_assertion": true, "assertion": true, "refresh_token": true, "code": true,
	"code_verifier": true, "subject_token": true, "actor_token": true, "password": true,
}

// clientAuth is how the client authenticates itself (RFC 6749 2.3, RFC
// 7523 2.2, RFC 8705 2): it decorates one token request attempt. It is
// asked for every attempt, retries included, so that each carries a
// newly minted assertion (a fresh jti) or the platform's latest one.
// Its errors name a file, never what it holds.
type clientAuth interface {
	apply(a *attempt) error
}

var (
	_ clientAuth = secretPost{}
	_ clientAuth = secretBasic{}
	_ clientAuth = assertionAuth{}
)

// clientAuth is how c authenticates. An unknown method authenticates as
// client_secret_post did before there were others: NewSource refuses
// one, and a Client built by hand keeps working as it did.
func (c Client) clientAuth() clientAuth {
	switch c.AuthMethod {
	case ClientSecretBasic:
		return secretBasic{id: c.ClientID, secret: c.ClientSecret}
	case ClientSecretJWT, PrivateKeyJWT:
		return assertionAuth{id: c.ClientID, method: c.AuthMethod, src: c.Assertion}
	case TLSClientAuth, AuthNone:
		// The certificate is the transport's (RFC 8705 2: client_id is
		// still sent); a public client has nothing else to send.
		return secretPost{id: c.ClientID}
	default:
		return secretPost{id: c.ClientID, secret: c.ClientSecret}
	}
}

// secretPost sends client_id, and client_secret if there is one, in the
// body (RFC 6749 2.3.1).
type secretPost struct{ id, secret string }

func (s secretPost) apply(a *attempt) error {
	a.add("client_id", s.id)
	if s.secret != "" {
		a.add("client_secret", s.secret)
	}
	return nil
}

// secretBasic sends id and secret as HTTP Basic credentials, and client_id
// in the body as well, because some endpoints (the generic Basic-auth
// guide in the seeds) require it there too.
type secretBasic struct{ id, secret string }

func (s secretBasic) apply(a *attempt) error {
	a.add("client_id", s.id)
	// RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
	user, pass := url.QueryEscape(s.id), url.QueryEscape(s.secret)
	a.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	// What goes out, without its padding, so that a truncated echo is
	// caught too; and the secret itself.
	a.secrets = append(a.secrets, s.secret, strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), "="))
	return nil
}

// assertionAuth sends a client assertion (RFC 7523 2.2): signed with the
// client secret (client_secret_jwt) or a private key, or written by the
// platform (private_key_jwt). client_id goes with it: RFC 7523 allows it,
// and some providers (Entra ID) look the client up by it.
type assertionAuth struct {
	id     string
	method AuthMethod
	src    AssertionSource
}

func (s assertionAuth) apply(a *attempt) error {
	if s.src == nil {
		return fmt.Errorf("client authentication %s: no client assertion source; build the source with NewSource, or set Client.Assertion", s.method)
	}
	assertion, err := s.src.Assertion()
	if err != nil {
		return err
	}
	a.add("client_id", s.id)
	a.add("client_assertion_type", ClientAssertionType)
	a.add("client_assertion", assertion)
	return nil
}
