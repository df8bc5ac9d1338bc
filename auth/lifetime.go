package auth

import (
	"time"

	"github.com/sirupsen/logrus"
)

// When a cached token is refreshed: ahead of its expiry, never believed
// past it, and never fetched more often than MinRefreshInterval allows.

// DefaultMinRefreshInterval is what config gives MinRefreshInterval when
// proxy.yaml does not say: under half of the shortest honest lifetime
// (1 s), so that such a token is still refreshed ahead of its expiry.
const DefaultMinRefreshInterval = 500 * time.Millisecond

// refreshAt is when a background refresh of tok should start: RefreshBefore
// ahead of expiry, at most half the lifetime ahead, less (with jitter) up
// to a tenth of that lead so that replicas do not refresh in lockstep;
// and not before MinRefreshInterval has passed since the last token
// request began. A token too short-lived for that (expires_in 0.2) gets
// no background refresh: once it expires the next request waits for the
// interval (see holdForInterval). It is never used past its expiry: an
// API refuses an expired token, and a request whose body could not be
// kept for a replay would fail outright.
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
	return later(tok.Expiry.Add(-lead), c.nextFetchAllowed())
}

// nextFetchAllowed is when MinRefreshInterval lets a token request made
// for expiry begin; zero if there is no bound or no request yet.
func (c *Cache) nextFetchAllowed() time.Time {
	last := c.lastFetch.Load()
	if c.opts.MinRefreshInterval <= 0 || last == 0 {
		return time.Time{}
	}
	return time.Unix(0, last).Add(c.opts.MinRefreshInterval)
}

// holdForInterval waits, in the shared fetch that every waiting caller
// shares (each bounded by its own context), until the interval since the
// last token request has passed. At most MinRefreshInterval.
func (c *Cache) holdForInterval() {
	d := c.nextFetchAllowed().Sub(c.opts.Now())
	if d <= 0 || d > c.opts.MinRefreshInterval {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// noteLifetime says once per cache that the endpoint's tokens live
// shorter than the interval between token requests, so that requests wait
// for a token between two of them: the endpoint will keep saying it.
func (c *Cache) noteLifetime(tok *Token, now time.Time) {
	if tok.Expiry.IsZero() || c.opts.MinRefreshInterval <= 0 {
		return
	}
	obtained := tok.Obtained
	if obtained.IsZero() {
		obtained = now
	}
	lifetime := tok.Expiry.Sub(obtained)
	if lifetime >= c.opts.MinRefreshInterval || c.shortLived.Swap(true) {
		return
	}
	c.opts.Log.WithFields(logrus.Fields{"expires_in": lifetime.String(), "min_refresh_interval": c.opts.MinRefreshInterval.String()}).
		Warn("the token endpoint gives tokens a lifetime shorter than min_refresh_interval; each is used until it expires, and requests after it wait for the next token request")
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
