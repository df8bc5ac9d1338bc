package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/authproxy/authproxy/pki"
)

// Identity says what an upstream's tokens depend on. It is decided here
// and nowhere else: the Store's records, the Shared store's keys and a
// config reload all go by it. Neither part reveals a secret.
type Identity struct {
	// Client identifies the client at its token endpoint: the token URL,
	// client id, scopes and extra parameters (an audience gets another
	// token). Tokens of two sources with the same Client are
	// interchangeable: a stored record carries it (Record.Fingerprint),
	// and the fleet shares a token under it.
	Client string
	// Settings covers every setting, secrets included, so that a reload
	// keeps a source, and its token, only if nothing it depends on
	// changed: a rotated secret or a moved target gets a new one.
	Settings string
}

// Identity computes s's identity. The files read once, when the source
// is built (the private key, the token endpoint's CA), count by their
// content's digest, so that a reload after one was replaced builds a new
// source; the files read for every request count by their names.
func (s Settings) Identity() Identity {
	c := s.Client
	sum := sha256.Sum256(fmt.Appendf(nil, "%q|%q|%q|%q|%q|%q|%q|%q|%q|%q|%v|%v|%v|%v",
		s.Grant, c.TokenURL, c.ClientID, c.ClientSecret, c.AuthMethod, c.BodyFormat, s.RefreshToken,
		sortedScopes(c.Scopes), paramScopes(c.Params), s.Target, s.RefreshBefore, s.DefaultLifetime, s.MinRefreshInterval, s.Timeout))
	if more := s.authSettings(); more != "" {
		// Only when set, so that an upstream with none keeps the identity
		// it had before these settings existed, and its token across the
		// upgrade's reload.
		sum = sha256.Sum256(fmt.Appendf(sum[:], "|%s", more))
	}
	if jkt := s.dpopThumbprint(); jkt != "" {
		// Only when set, as above. The key counts by its thumbprint: a
		// token bound to another key is useless with this one.
		sum = sha256.Sum256(fmt.Appendf(sum[:], "|dpop=%s|%s", jkt, s.DPoPSigningAlg))
	}
	return Identity{Client: s.clientFingerprint(), Settings: hex.EncodeToString(sum[:])}
}

// authSettings writes the settings of the client's authentication and of
// the grants other than client credentials and refresh tokens; "" when
// none is set.
func (s Settings) authSettings() string {
	t := s.TLS
	fields := []string{
		fileDigest(s.PrivateKeyFile), s.KeyID, string(s.SigningAlg), s.AssertionAudience, s.ClientAssertionFile,
		fileDigest(t.CAFile), t.CertFile, t.KeyFile, t.ServerName,
		s.AssertionFile, s.SubjectTokenFile, s.SubjectTokenType, s.ActorTokenFile, s.ActorTokenType, s.RequestedTokenType,
		s.Username, s.Password, s.tokenTypeSetting(),
	}
	if !slices.ContainsFunc(fields, func(f string) bool { return f != "" }) {
		return ""
	}
	return fmt.Sprintf("%q", fields)
}

// tokenTypeSetting is the type the upstream takes, if not Bearer ("").
func (s Settings) tokenTypeSetting() string {
	if t := s.Client.TokenType; t != "" && !strings.EqualFold(t, "bearer") {
		return t
	}
	return ""
}

// clientFingerprint is Identity's Client part: the client's Fingerprint
// and, for the grants whose tokens are a subject's rather than the
// client's own, who the subject is.
func (s Settings) clientFingerprint() string {
	c := s.Client
	if c.DPoP == nil && s.DPoPKeyFile != "" {
		// The key is read when the source is built; here only its
		// thumbprint counts, as Client.Fingerprint counts it then.
		c.DPoP = &DPoPKey{thumbprint: s.dpopThumbprint()}
	}
	var subject []string
	switch s.Grant {
	case GrantPassword:
		subject = []string{"grant:password", "username=" + s.Username}
	case GrantJWTBearer:
		subject = []string{"grant:jwt-bearer", "assertion_file=" + s.AssertionFile, "key=" + fileDigest(s.PrivateKeyFile)}
	case GrantTokenExchange:
		subject = []string{"grant:token-exchange", "subject=" + s.SubjectTokenFile + " " + s.SubjectTokenType,
			"actor=" + s.ActorTokenFile + " " + s.ActorTokenType, "requested=" + s.RequestedTokenType}
	default:
		return c.Fingerprint()
	}
	return fingerprint(c.TokenURL, c.ClientID, append(c.fingerprintScopes(), subject...))
}

// Fingerprint identifies the client at its token endpoint: Identity's
// Client part. It hides nothing secret.
func (c Client) Fingerprint() string {
	return fingerprint(c.TokenURL, c.ClientID, c.fingerprintScopes())
}

// fingerprintScopes are the scopes, params, audiences and resources: what
// the client asks for.
func (c Client) fingerprintScopes() []string {
	s := append(slices.Clone(c.Scopes), paramScopes(c.Params)...)
	if c.DPoP != nil {
		// A token, and a public client's refresh token, bound to one key
		// is no other key's: a new key gets tokens of its own, in the
		// Store and in the fleet's shared store alike.
		s = append(s, "dpop:jkt="+c.DPoP.thumbprint)
	}
	for _, a := range c.Audience {
		s = append(s, "audience:"+a)
	}
	for _, r := range c.Resource {
		s = append(s, "resource:"+r)
	}
	return s
}

// fileDigest identifies a file's content without revealing it: a key
// file's digest says whether the key changed, not what it is. "" for no
// file; a file that cannot be read has a digest of its error.
func fileDigest(path string) string {
	if path == "" {
		return ""
	}
	b, err := pki.ReadFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer clear(b)
	sum := sha256.Sum256(b)
	return path + "@" + hex.EncodeToString(sum[:])
}

// legacyFingerprint is the Fingerprint records were written with before
// params counted: such a record's refresh token is still this client's
// (params were not sent with a refresh), its access token maybe not.
func (c Client) legacyFingerprint() string {
	return fingerprint(c.TokenURL, c.ClientID, c.Scopes)
}

func fingerprint(tokenURL, clientID string, scopes []string) string {
	sum := sha256.Sum256([]byte(tokenURL + "\n" + clientID + "\n" + strings.Join(sortedScopes(scopes), " ")))
	return hex.EncodeToString(sum[:8])
}

func sortedScopes(scopes []string) []string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return s
}

// paramScopes writes params as sorted "param:k=v" entries, which the
// fingerprint mixes with the scopes.
func paramScopes(params map[string]string) []string {
	out := make([]string, 0, len(params))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		out = append(out, "param:"+k+"="+params[k])
	}
	return out
}
