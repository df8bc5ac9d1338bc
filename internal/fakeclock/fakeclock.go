// Package fakeclock is a clock that moves only when a test says so. Tests
// pass its Now to the code under test (auth caches, the fake APIs) instead
// of sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use. Its zero value reads the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock set to start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
