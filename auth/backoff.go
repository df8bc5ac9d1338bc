package auth

import (
	"errors"
	"fmt"
	"time"
)

// After a failed fetch the cache waits before asking the endpoint again,
// longer after each failure, and tells its callers until when.

// BackoffError is returned by a failed fetch, and then by every Token call
// until Until instead of asking the endpoint again. Err is the failure.
type BackoffError struct {
	Err error
	// Until is when the next fetch may happen, on the cache's clock.
	Until time.Time
	// Wait is how long that was from when the error was returned; callers
	// use it for Retry-After rather than comparing Until with a clock of
	// their own.
	Wait time.Duration
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("%v (next attempt at %s)", e.Err, e.Until.UTC().Format(time.RFC3339))
}

func (e *BackoffError) Unwrap() error { return e.Err }

func (c *Cache) backoff(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != nil && now.Before(c.retryAt) {
		return &BackoffError{Err: c.lastErr, Until: c.retryAt, Wait: c.retryAt.Sub(now)}
	}
	return nil
}

// recordFailure doubles the wait before the next fetch, from MinBackoff up
// to MaxBackoff, with up to 20% jitter, and returns it. An endpoint's
// Retry-After, capped at MaxRetryAfter, lengthens the wait.
func (c *Cache) recordFailure(now time.Time, err error) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	if isReauth(err) || errors.Is(err, ErrSharedStoreUnavailable) {
		// No endpoint is asked in these states: the grant only looks for a
		// new login, the cache for the store's return, and either should
		// be noticed within a second.
		c.retryAt = now.Add(c.opts.MinBackoff)
		return c.opts.MinBackoff
	}
	c.failures++
	wait := c.opts.MinBackoff
	for i := 1; i < c.failures && wait < c.opts.MaxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, c.opts.MaxBackoff)
	wait += c.opts.Jitter(wait / 5)
	var re *RetrieveError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		wait = max(wait, min(re.RetryAfter, c.opts.MaxRetryAfter))
	}
	c.retryAt = now.Add(wait)
	c.lastErr = err
	return wait
}

func (c *Cache) recordSuccess(now time.Time) {
	c.mu.Lock()
	c.failures, c.retryAt, c.lastErr, c.lastRefresh = 0, time.Time{}, nil, now
	c.mu.Unlock()
}
