package app

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The garbage collector's defaults for a serving proxy. Go's GOGC of 100
// collects each time the heap doubles; a proxy's heap is small and its
// garbage is almost all per request, so that is a collection every few
// thousand requests, and about a sixth of its CPU. 400 trades
// memory for that CPU, and a soft memory limit bounds the trade: near the
// limit the collector runs as often as it must to stay under it.
const (
	defaultGOGC = 400
	// baseMemoryLimit is the soft limit's share for everything but the
	// replay copies: the default limit is this plus limits.replay_memory,
	// or 3/4 of the container's memory limit if that is less.
	baseMemoryLimit = 128 << 20
)

// gcSettings is what setGCDefaults decided, for the start-up log.
type gcSettings struct {
	GOGC        int   // -1: left as the environment set it
	MemoryLimit int64 // -1: left as the environment set it
}

// setGCDefaults sets GOGC and the memory limit to the proxy's defaults,
// unless the environment's GOGC or GOMEMLIMIT, which the runtime has
// already applied, say otherwise. replayMemory is limits.replay_memory;
// cgroupLimit the container's memory limit (0: none known).
func setGCDefaults(getenv func(string) string, replayMemory, cgroupLimit int64) gcSettings {
	s := gcSettings{GOGC: -1, MemoryLimit: -1}
	if getenv("GOGC") == "" {
		s.GOGC = defaultGOGC
		debug.SetGCPercent(s.GOGC)
	}
	if getenv("GOMEMLIMIT") == "" {
		s.MemoryLimit = baseMemoryLimit + replayMemory
		if cgroupLimit > 0 {
			s.MemoryLimit = min(s.MemoryLimit, cgroupLimit/4*3)
		}
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	return s
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup (v2,
// else v1); 0 when there is none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		// "max", or v1's "unlimited" (a page-rounded maximum int64).
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}
