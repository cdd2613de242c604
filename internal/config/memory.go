package config

import "fmt"

// Memory tunes Go's garbage collector for the process (applied by
// server.TuneMemory when `wail serve`, `wail resolve`, `wail demo` or the
// bench's in-process server starts). The environment variables GOGC and
// GOMEMLIMIT, when set, win over these keys.
type Memory struct {
	// GCPercent is GOGC: how far the heap grows past what the last
	// collection kept before the next one runs (100 is Go's default).
	// wail's default, 300, spends less CPU on collections for a bigger
	// heap (docs/operations.md, "CPU for memory").
	GCPercent int `yaml:"gc_percent"`
	// LimitBytes is a soft memory limit (GOMEMLIMIT): near it the
	// collector runs as often as it must, whatever gc_percent says. 0:
	// three quarters of the lowest memory limit of the process's cgroup
	// and those above it (a container, a pod), but not under 64 MiB
	// unless the limit is lower, else none; -1: none.
	LimitBytes int64 `yaml:"limit_bytes"`
}

// MinMemoryLimit is the lowest limit_bytes accepted, and the lowest limit
// taken from a cgroup that has more: under it the collector would run all
// the time.
const MinMemoryLimit = 64 << 20

func defaultMemory() Memory { return Memory{GCPercent: 300} }

func (c *Config) validateMemory() []error {
	var errs []error
	m := c.Memory
	if m.GCPercent < 25 || m.GCPercent > 10000 {
		errs = append(errs, fmt.Errorf("memory.gc_percent %d out of range 25..10000", m.GCPercent))
	}
	if m.LimitBytes < -1 || (m.LimitBytes > 0 && m.LimitBytes < MinMemoryLimit) {
		errs = append(errs, fmt.Errorf("memory.limit_bytes %d: want -1 (none), 0 (from the cgroup) or at least %d (64 MiB)", m.LimitBytes, MinMemoryLimit))
	}
	return errs
}
