package proxy

// Why a body that could have been replayed streamed without a copy.
const (
	skipMaxBody      = "max_body"
	skipMemoryBudget = "memory_budget"
)

// minCopyGrowth is the least a chunked body's copy grows by, so that a
// body arriving in small chunks does not reallocate at each.
const minCopyGrowth = 16 << 10

// replayCopy is the copy of a request body kept for a replay, of up to
// max bytes: its bytes, the share of a ReplayBudget their capacity holds,
// and when they go back to copyPool. The copy's capacity is taken from the
// budget as it grows; when the budget or max would be passed, the copy is
// given up (skip says why) and the body streams on without it.
//
// It has no lock of its own: it lives in the copyingBody that fills it,
// whose mutex is held for every method.
type replayCopy struct {
	buf      []byte
	max      int64
	budget   *ReplayBudget // nil: bounded by max alone
	reserved int64         // the budget taken for buf: its capacity
	skip     string        // why there is no copy (skipMaxBody, skipMemoryBudget); "" while there is

	// The copy goes back to copyPool once both the transport has closed
	// the body and the response is closed (refs, two holds), and no read
	// is under way; after a replay, never (the replay's writer may still
	// be reading it).
	refs     int
	released bool // freed: the copy is gone
	pooled   *[]byte
	replayed bool
}

// init makes the zero c a copy of a body of size bytes (-1: unknown), or
// returns false when size cannot be had from budget.
func (c *replayCopy) init(limit, size int64, budget *ReplayBudget) bool {
	c.max, c.budget, c.refs = limit, budget, 2
	c.pooled = copyPool.Get().(*[]byte)
	buf := *c.pooled
	switch pooled := int64(cap(buf)); {
	case pooled > 0 && pooled >= size && budget.take(pooled):
		c.reserved = pooled
	case size > 0 && budget.take(size):
		buf, c.reserved = make([]byte, 0, size), size
	case size > 0:
		copyPool.Put(c.pooled)
		return false
	default:
		buf = nil // grows in keep as the body arrives
	}
	c.buf = buf[:0]
	return true
}

// kept reports whether there still is a copy to add to.
func (c *replayCopy) kept() bool { return c.skip == "" && !c.released }

// keep appends b to the copy, growing it within max and the budget, or
// gives the copy up; nothing once there is no copy.
func (c *replayCopy) keep(b []byte) {
	if !c.kept() {
		return
	}
	need := int64(len(c.buf) + len(b))
	if need > c.max {
		c.giveUp(skipMaxBody)
		return
	}
	if capacity := int64(cap(c.buf)); need > capacity {
		grown := min(max(2*capacity, need, minCopyGrowth), c.max)
		if !c.budget.take(grown - c.reserved) {
			c.giveUp(skipMemoryBudget)
			return
		}
		c.reserved = grown
		c.buf = append(make([]byte, 0, grown), c.buf...)
	}
	c.buf = append(c.buf, b...)
}

// spare is the copy's room for the next read to go straight into, at
// most n bytes and never past max; nil when there is no copy or no room.
// What is read into it joins the copy with took.
func (c *replayCopy) spare(n int64) []byte {
	if !c.kept() {
		return nil
	}
	room := min(int64(cap(c.buf)), c.max) - int64(len(c.buf))
	if room <= 0 {
		return nil
	}
	return c.buf[len(c.buf) : len(c.buf)+int(min(room, n))]
}

// took adds the n bytes read into spare's room to the copy.
func (c *replayCopy) took(n int) {
	c.buf = c.buf[:len(c.buf)+n] // within cap and max: spare saw to that
}

// giveUp drops the copy for reason.
func (c *replayCopy) giveUp(reason string) {
	c.skip, c.buf = reason, nil
	c.budget.give(c.reserved)
	c.reserved = 0
}

// drop lets go of one of the two holds, and reports whether it was the
// last: the copy may then be freed, once no read is under way.
func (c *replayCopy) drop() (last bool) {
	c.refs--
	return c.refs == 0
}

// free returns the copy's share of the budget and, unless a replay has
// it, the copy to the pool. No read is under way.
func (c *replayCopy) free() {
	c.released = true
	c.budget.give(c.reserved)
	c.reserved = 0
	if c.skip == "" && !c.replayed && int64(cap(c.buf)) <= c.max {
		*c.pooled = c.buf[:0]
		copyPool.Put(c.pooled)
	}
	c.buf = nil
}
