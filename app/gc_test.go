package app

import (
	"runtime/debug"
	"testing"
)

// GOGC and the memory limit get the proxy's defaults, each unless the
// environment sets it; the limit leaves room for the replay copies and
// stays under a container's limit.
func TestGCDefaults(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for _, tt := range []struct {
		name      string
		env       map[string]string
		cgroup    int64
		gogc      int
		limit     int64
		wantLimit int64 // what the runtime then has
	}{
		{"defaults", nil, 0, defaultGOGC, baseMemoryLimit + 64<<20, baseMemoryLimit + 64<<20},
		{"a small container", nil, 128 << 20, defaultGOGC, 96 << 20, 96 << 20},
		{"a large container", nil, 8 << 30, defaultGOGC, baseMemoryLimit + 64<<20, baseMemoryLimit + 64<<20},
		{"GOGC set", map[string]string{"GOGC": "100"}, 0, -1, baseMemoryLimit + 64<<20, baseMemoryLimit + 64<<20},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, 0, defaultGOGC, -1, 1 << 30},
	} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(1 << 30) // as the environment's GOMEMLIMIT would have
		got := setGCDefaults(env(tt.env), 64<<20, tt.cgroup)
		if got.GOGC != tt.gogc || got.MemoryLimit != tt.limit {
			t.Errorf("%s: %+v, want GOGC %d, limit %d", tt.name, got, tt.gogc, tt.limit)
		}
		wantGOGC := tt.gogc
		if wantGOGC < 0 {
			wantGOGC = 100
		}
		if gogc := debug.SetGCPercent(100); gogc != wantGOGC {
			t.Errorf("%s: the runtime's GOGC is %d, want %d", tt.name, gogc, wantGOGC)
		}
		if limit := debug.SetMemoryLimit(-1); limit != tt.wantLimit {
			t.Errorf("%s: the runtime's memory limit is %d, want %d", tt.name, limit, tt.wantLimit)
		}
	}
}
