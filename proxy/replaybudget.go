package proxy

import "sync/atomic"

// ReplayBudget bounds the memory that the copies of request bodies kept
// for a replay take together, across every upstream: a copy that would
// take more than what is left is not made, and its request streams
// through without one (its rejection then goes back to the client, as for
// a body over MaxReplayBody). Without it, slow uploads by many clients at
// once hold up to MaxReplayBody each. A process makes one and hands it to
// every Handler it builds, so a config reload does not reset it.
//
// It is safe for concurrent use; a nil *ReplayBudget bounds nothing.
type ReplayBudget struct {
	limit atomic.Int64
	used  atomic.Int64
}

// NewReplayBudget returns a budget of limit bytes; zero keeps no body for
// a replay (requests without a body still replay).
func NewReplayBudget(limit int64) *ReplayBudget {
	b := &ReplayBudget{}
	b.limit.Store(limit)
	return b
}

// SetLimit changes the bound; copies already made keep their share.
func (b *ReplayBudget) SetLimit(limit int64) { b.limit.Store(limit) }

// Limit returns the bound in bytes.
func (b *ReplayBudget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit.Load()
}

// InUse returns the bytes the copies hold now.
func (b *ReplayBudget) InUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// take reserves n bytes, or reports that they are not there. One atomic
// add, undone when over: two requests racing for the last bytes may both
// be refused, but the bound is never passed.
func (b *ReplayBudget) take(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	if b.used.Add(n) > b.limit.Load() {
		b.used.Add(-n)
		return false
	}
	return true
}

// give returns n bytes taken before.
func (b *ReplayBudget) give(n int64) {
	if b != nil && n > 0 {
		b.used.Add(-n)
	}
}
