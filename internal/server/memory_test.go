package server

import (
	"math"
	"path"
	"runtime/debug"
	"testing"
	"testing/fstest"

	"github.com/wail-cdc/wail/internal/config"
)

func TestTuneMemory(t *testing.T) {
	gib := int64(1 << 30)
	v2 := func(dir, max string) fstest.MapFS {
		return fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("0::" + dir + "\n")},
			path.Join("sys/fs/cgroup", dir, "memory.max"): {Data: []byte(max + "\n")},
		}
	}
	v1 := fstest.MapFS{
		"proc/self/cgroup": {Data: []byte("12:cpu,cpuacct:/x\n11:memory:/docker/abc\n")},
		"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": {Data: []byte("4294967296\n")},
	}
	v1Unlimited := fstest.MapFS{
		"proc/self/cgroup":                           {Data: []byte("11:memory:/\n")},
		"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
	}
	hybrid := fstest.MapFS{ // v1 controllers with an empty v2 hierarchy (this CI machine)
		"proc/self/cgroup": {Data: []byte("4:memory:/process_api/5015\n1:cpu:/\n0::/\n")},
		"sys/fs/cgroup/memory/process_api/5015/memory.limit_in_bytes": {Data: []byte("2147483648\n")},
		"sys/fs/cgroup/unified/cgroup.procs":                          {Data: []byte("1\n")},
	}
	initScope := fstest.MapFS{ // the process in a child of the container's cgroup, which holds the limit
		"proc/self/cgroup":                    {Data: []byte("0::/init.scope\n")},
		"sys/fs/cgroup/init.scope/memory.max": {Data: []byte("max\n")},
		"sys/fs/cgroup/memory.max":            {Data: []byte("1073741824\n")},
	}
	pod := fstest.MapFS{ // a pod's limit below the container's
		"proc/self/cgroup":                           {Data: []byte("0::/kubepods/pod1/ctr\n")},
		"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": {Data: []byte("4294967296\n")},
		"sys/fs/cgroup/kubepods/pod1/memory.max":     {Data: []byte("2147483648\n")},
		"sys/fs/cgroup/kubepods/memory.max":          {Data: []byte("max\n")},
	}
	v1Parent := fstest.MapFS{
		"proc/self/cgroup": {Data: []byte("11:memory:/docker/abc/child\n")},
		"sys/fs/cgroup/memory/docker/abc/child/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
		"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes":       {Data: []byte("4294967296\n")},
	}
	for _, tc := range []struct {
		name string
		mem  config.Memory
		env  map[string]string
		root fstest.MapFS
		want GC
	}{
		{"defaults, no cgroup limit", config.Memory{GCPercent: 300}, nil, v2("/user.slice", "max"),
			GC{300, "memory.gc_percent", math.MaxInt64, "none"}},
		{"defaults in a container (v2)", config.Memory{GCPercent: 300}, nil, v2("/", "8589934592"),
			GC{300, "memory.gc_percent", 6 * gib, "cgroup"}},
		{"a nested v2 cgroup", config.Memory{GCPercent: 200}, nil, v2("/kubepods/pod1", "4294967296"),
			GC{200, "memory.gc_percent", 3 * gib, "cgroup"}},
		{"cgroup v1", config.Memory{GCPercent: 300}, nil, v1, GC{300, "memory.gc_percent", 3 * gib, "cgroup"}},
		{"cgroup v1 beside an empty v2", config.Memory{GCPercent: 300}, nil, hybrid,
			GC{300, "memory.gc_percent", 3 * gib / 2, "cgroup"}},
		{"the limit on the container's cgroup, the process in a child", config.Memory{GCPercent: 300}, nil, initScope,
			GC{300, "memory.gc_percent", 3 * gib / 4, "cgroup"}},
		{"the lowest limit above the process (a pod's)", config.Memory{GCPercent: 300}, nil, pod,
			GC{300, "memory.gc_percent", 3 * gib / 2, "cgroup"}},
		{"cgroup v1, the limit on a parent", config.Memory{GCPercent: 300}, nil, v1Parent,
			GC{300, "memory.gc_percent", 3 * gib, "cgroup"}},
		{"a small container: not under 64 MiB", config.Memory{GCPercent: 300}, nil, v2("/", "67108864"),
			GC{300, "memory.gc_percent", 64 << 20, "cgroup"}},
		{"a tiny container: its own limit", config.Memory{GCPercent: 300}, nil, v2("/", "33554432"),
			GC{300, "memory.gc_percent", 32 << 20, "cgroup"}},
		{"a container of 80 MiB: 64 MiB, over three quarters", config.Memory{GCPercent: 300}, nil, v2("/", "83886080"),
			GC{300, "memory.gc_percent", 64 << 20, "cgroup"}},
		{"cgroup v1 without a limit", config.Memory{GCPercent: 300}, nil, v1Unlimited,
			GC{300, "memory.gc_percent", math.MaxInt64, "none"}},
		{"no cgroup files", config.Memory{GCPercent: 300}, nil, fstest.MapFS{},
			GC{300, "memory.gc_percent", math.MaxInt64, "none"}},
		{"an explicit limit", config.Memory{GCPercent: 300, LimitBytes: gib}, nil, v2("/", "8589934592"),
			GC{300, "memory.gc_percent", gib, "memory.limit_bytes"}},
		{"no limit asked for", config.Memory{GCPercent: 300, LimitBytes: -1}, nil, v2("/", "8589934592"),
			GC{300, "memory.gc_percent", math.MaxInt64, "none"}},
		{"the environment wins", config.Memory{GCPercent: 300, LimitBytes: gib},
			map[string]string{"GOGC": "150", "GOMEMLIMIT": "2GiB"}, v2("/", "8589934592"),
			// the runtime read GOGC and GOMEMLIMIT at start; the test's
			// process set them below, as the runtime would have
			GC{150, "GOGC", 2 * gib, "GOMEMLIMIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restoreGC(t)
			if v, ok := tc.env["GOGC"]; ok && v == "150" {
				debug.SetGCPercent(150)
				debug.SetMemoryLimit(2 * gib)
			}
			env := MemoryEnv{Root: tc.root, Getenv: func(k string) string { return tc.env[k] }}
			got := TuneMemory(tc.mem, env)
			if got != tc.want {
				t.Fatalf("TuneMemory = %+v, want %+v", got, tc.want)
			}
			if p := debug.SetGCPercent(-1); p != tc.want.Percent {
				t.Errorf("the runtime's GC percent is %d, want %d", p, tc.want.Percent)
			}
			if l := debug.SetMemoryLimit(-1); l != tc.want.Limit {
				t.Errorf("the runtime's memory limit is %d, want %d", l, tc.want.Limit)
			}
		})
	}
}

// restoreGC puts the collector's settings back after the test.
func restoreGC(t *testing.T) {
	pct, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(pct)
	t.Cleanup(func() { debug.SetGCPercent(pct); debug.SetMemoryLimit(limit) })
}

func TestGCString(t *testing.T) {
	for _, tc := range []struct {
		gc   GC
		want string
	}{
		{GC{300, "memory.gc_percent", math.MaxInt64, "none"}, "GC percent 300 (memory.gc_percent), no memory limit"},
		{GC{150, "GOGC", 3 << 29, "cgroup"}, "GC percent 150 (GOGC), memory limit 1.5 GiB (cgroup)"},
	} {
		if got := tc.gc.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.gc, got, tc.want)
		}
	}
}
