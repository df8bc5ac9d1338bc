package auth

import (
	"time"

	"github.com/sirupsen/logrus"
)

// How long a cached token is believed, and when it is refreshed ahead of
// its expiry.

// floor gives tok at least MinLifetime, counted from when it was
// obtained, so that an endpoint that says expires_in 0.2 does not get a
// token request for nearly every request. A token that really dies
// sooner is replaced after its first 401, as a revoked one is. Said once
// per cache: the endpoint will keep saying it.
func (c *Cache) floor(tok *Token, now time.Time) *Token {
	obtained := tok.Obtained
	if obtained.IsZero() {
		obtained = now
	}
	if tok.Expiry.IsZero() || tok.Expiry.Sub(obtained) >= c.opts.MinLifetime {
		return tok
	}
	if !c.floored.Swap(true) {
		c.opts.Log.WithFields(logrus.Fields{"expires_in": tok.Expiry.Sub(obtained).String(), "min_lifetime": c.opts.MinLifetime.String()}).
			Warn("the token endpoint gives tokens a lifetime shorter than min_lifetime; each is used for min_lifetime or until the API rejects it")
	}
	t := *tok
	t.Expiry = obtained.Add(c.opts.MinLifetime)
	return &t
}

// refreshAt is when a background refresh of tok should start: RefreshBefore
// ahead of expiry, at most half the lifetime ahead, less (with jitter) up
// to a tenth of that lead so that replicas do not refresh in lockstep.
func (c *Cache) refreshAt(tok *Token, now time.Time, jitter bool) time.Time {
	if tok.Expiry.IsZero() || c.opts.RefreshBefore <= 0 {
		return time.Time{}
	}
	obtained := tok.Obtained
	if obtained.IsZero() {
		obtained = now
	}
	lead := min(c.opts.RefreshBefore, tok.Expiry.Sub(obtained)/2)
	if lead <= 0 {
		return time.Time{}
	}
	if jitter {
		lead += c.opts.Jitter(lead / 10)
	}
	return tok.Expiry.Add(-lead)
}
