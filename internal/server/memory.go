package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/wail-cdc/wail/internal/config"
)

// GC is the collector setting TuneMemory chose, and where each half came
// from ("memory.gc_percent", "GOGC", "cgroup", "memory.limit_bytes",
// "GOMEMLIMIT" or "none").
type GC struct {
	Percent     int    `json:"gc_percent"`
	PercentFrom string `json:"gc_percent_from"`
	// Limit is the soft memory limit in bytes (math.MaxInt64: none).
	Limit     int64  `json:"memory_limit"`
	LimitFrom string `json:"memory_limit_from"`
}

// String says "GC percent 300 (memory.gc_percent), no memory limit" or
// "... memory limit 6.0 GiB (cgroup)".
func (g GC) String() string {
	s := fmt.Sprintf("GC percent %d (%s), ", g.Percent, g.PercentFrom)
	if g.Limit == math.MaxInt64 {
		return s + "no memory limit"
	}
	return s + fmt.Sprintf("memory limit %.1f GiB (%s)", float64(g.Limit)/(1<<30), g.LimitFrom)
}

// MemoryEnv is what TuneMemory reads of the process's surroundings; tests
// replace it.
type MemoryEnv struct {
	// Getenv reads an environment variable ("": unset).
	Getenv func(string) string
	// Root holds /proc/self/cgroup and /sys/fs/cgroup (paths without the
	// leading slash).
	Root fs.FS
}

// HostMemoryEnv reads the real environment and filesystem.
func HostMemoryEnv() MemoryEnv { return MemoryEnv{Getenv: os.Getenv, Root: os.DirFS("/")} }

// TuneMemory applies m to the Go runtime of this process, except for the
// halves that GOGC or GOMEMLIMIT set (the runtime read those at start),
// and returns what is in effect. It belongs to the commands that own the
// process, never to a library.
func TuneMemory(m config.Memory, env MemoryEnv) GC {
	gc := GC{Percent: m.GCPercent, PercentFrom: "memory.gc_percent", Limit: math.MaxInt64, LimitFrom: "none"}
	if env.Getenv("GOGC") != "" {
		gc.PercentFrom = "GOGC"
		gc.Percent = debug.SetGCPercent(-1) // read it back
		debug.SetGCPercent(gc.Percent)
	} else {
		debug.SetGCPercent(m.GCPercent)
	}
	switch {
	case env.Getenv("GOMEMLIMIT") != "":
		gc.Limit, gc.LimitFrom = debug.SetMemoryLimit(-1), "GOMEMLIMIT"
		return gc
	case m.LimitBytes > 0:
		gc.Limit, gc.LimitFrom = m.LimitBytes, "memory.limit_bytes"
	case m.LimitBytes == 0:
		if c, ok := cgroupMemoryMax(env.Root); ok {
			// Three quarters, but not under 64 MiB (where the collector
			// would run all the time) unless the cgroup has less.
			gc.Limit, gc.LimitFrom = max(c/4*3, min(c, config.MinMemoryLimit)), "cgroup"
		}
	}
	debug.SetMemoryLimit(gc.Limit)
	return gc
}

// cgroupMemoryMax returns the lowest memory limit of the process's cgroup
// and those above it (v2's memory.max, v1's memory.limit_in_bytes), if
// any has one: a container's limit may sit on a parent of the cgroup the
// process is in (a pod's, or the container's root when the process runs
// in a child such as /init.scope).
func cgroupMemoryMax(root fs.FS) (int64, bool) {
	var v2, v1 string // the process's cgroup paths
	if b, err := fs.ReadFile(root, "proc/self/cgroup"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			id, rest, _ := strings.Cut(sc.Text(), ":")
			ctrls, path, _ := strings.Cut(rest, ":")
			switch {
			case id == "0" && ctrls == "":
				v2 = path
			case ctrlsHold(ctrls, "memory"):
				v1 = path
			}
		}
	}
	lowest, found := int64(math.MaxInt64), false
	for _, h := range []struct{ dir, cgroup, file string }{
		{"sys/fs/cgroup", v2, "memory.max"},
		{"sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"},
	} {
		for dir := path.Join("/", h.cgroup); ; dir = path.Dir(dir) {
			if n, ok := readLimit(root, path.Join(h.dir, dir, h.file)); ok && n < lowest {
				lowest, found = n, true
			}
			if dir == "/" {
				break
			}
		}
	}
	return lowest, found
}

// readLimit reads a cgroup memory limit file: "max" (v2) or a number
// of 2^60 or more (v1) is no limit.
func readLimit(root fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}

func ctrlsHold(ctrls, name string) bool {
	for c := range strings.SplitSeq(ctrls, ",") {
		if c == name {
			return true
		}
	}
	return false
}
