package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
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

// Identity computes s's identity.
func (s Settings) Identity() Identity {
	c := s.Client
	sum := sha256.Sum256(fmt.Appendf(nil, "%q|%q|%q|%q|%q|%q|%q|%q|%q|%q|%v|%v|%v|%v",
		s.Grant, c.TokenURL, c.ClientID, c.ClientSecret, c.AuthMethod, c.BodyFormat, s.RefreshToken,
		sortedScopes(c.Scopes), paramScopes(c.Params), s.Target, s.RefreshBefore, s.DefaultLifetime, s.MinLifetime, s.Timeout))
	return Identity{Client: c.Fingerprint(), Settings: hex.EncodeToString(sum[:])}
}

// Fingerprint identifies the client at its token endpoint: Identity's
// Client part. It hides nothing secret.
func (c Client) Fingerprint() string {
	return fingerprint(c.TokenURL, c.ClientID, append(slices.Clone(c.Scopes), paramScopes(c.Params)...))
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
