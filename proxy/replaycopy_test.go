package proxy

import (
	"bytes"
	"testing"
)

// A chunked body's copy grows as it arrives, its capacity taken from the
// budget, and is given up, its share given back, once the body passes
// max or the budget: the reason is what the access log says.
func TestReplayCopyGrowsWithinMaxAndTheBudget(t *testing.T) {
	for _, tt := range []struct {
		name      string
		max, have int64 // have: the budget's limit
		skip      string
	}{
		{"within both", 64 << 10, 1 << 20, ""},
		{"over max", 40 << 10, 1 << 20, skipMaxBody},
		{"over the budget", 64 << 10, 20 << 10, skipMemoryBudget},
	} {
		t.Run(tt.name, func(t *testing.T) {
			budget := NewReplayBudget(tt.have)
			var c replayCopy
			if !c.init(tt.max, -1, budget) {
				t.Fatal("no copy of a body of unknown length")
			}
			chunk := bytes.Repeat([]byte("c"), 10<<10)
			for range 5 { // 50 KiB
				c.keep(chunk)
			}
			if c.skip != tt.skip {
				t.Fatalf("given up for %q, want %q", c.skip, tt.skip)
			}
			switch {
			case tt.skip == "" && (len(c.buf) != 5*len(chunk) || budget.InUse() != int64(cap(c.buf))):
				t.Errorf("copy of %d bytes, %d of the budget for its capacity %d; want all 50 KiB, the budget holding its capacity",
					len(c.buf), budget.InUse(), cap(c.buf))
			case tt.skip != "" && (c.buf != nil || budget.InUse() != 0 || c.spare(1) != nil):
				t.Errorf("a copy given up still holds %d bytes, %d of the budget, or room", len(c.buf), budget.InUse())
			}
			if c.drop() || !c.drop() {
				t.Error("the second of the two holds dropped is not the last")
			}
			c.free()
			if budget.InUse() != 0 || c.kept() {
				t.Errorf("freed: %d of the budget held, kept %v; want none", budget.InUse(), c.kept())
			}
		})
	}
}

// A sized body's copy is reserved whole at the start; its room is what
// a read may go straight into, never past max.
func TestReplayCopyRoomForReadsGoingStraightIn(t *testing.T) {
	budget := NewReplayBudget(1 << 20)
	var c replayCopy
	if !c.init(100, 100, budget) {
		t.Fatal("no copy of a body within max and the budget")
	}
	if p := c.spare(60); len(p) != 60 {
		t.Fatalf("room for %d bytes, want 60", len(p))
	}
	c.took(60)
	if p := c.spare(60); len(p) != 40 {
		t.Errorf("room for %d bytes after 60 of 100, want 40", len(p))
	}
	c.took(40)
	if p := c.spare(1); p != nil || len(c.buf) != 100 {
		t.Errorf("a full copy: room %d, %d bytes kept; want none, 100", len(p), len(c.buf))
	}
	var tooBig replayCopy
	if tooBig.init(100, 2<<20, budget) {
		t.Error("a copy of a body over the budget was made")
	}
}
