package versus

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go runs on (the kernel fixes it for the ABI).
const clockTicks = 100

// procStat is what the bench reads from /proc/<pid>/stat.
type procStat struct {
	ppid                   int
	utime, stime           uint64 // ticks of the process itself
	cutime, cstime         uint64 // ticks of its waited-for children
	rssPages, startedTicks uint64
}

// parseStat parses /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name, want >= 22", len(f))
	}
	var s procStat
	var err error
	num := func(field int) uint64 {
		v, e := strconv.ParseUint(f[field-3], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("stat: field %d %q: %w", field, f[field-3], e)
		}
		return v
	}
	ppid, perr := strconv.Atoi(f[4-3])
	if perr != nil {
		return procStat{}, fmt.Errorf("stat: ppid %q: %w", f[4-3], perr)
	}
	s.ppid = ppid
	s.utime, s.stime, s.cutime, s.cstime = num(14), num(15), num(16), num(17)
	s.startedTicks, s.rssPages = num(22), num(24)
	return s, err
}

// memStatus is the resident memory of a process, from /proc/<pid>/status.
type memStatus struct {
	HWMKB int64 // VmHWM: peak resident set
	RSSKB int64 // VmRSS
}

// parseStatus reads VmHWM and VmRSS from /proc/<pid>/status (kB). A kernel
// thread or a zombie has neither: both stay 0.
func parseStatus(b []byte) (memStatus, error) {
	var m memStatus
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return memStatus{}, fmt.Errorf("status: %s: %q", name, rest)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memStatus{}, fmt.Errorf("status: %s: %w", name, err)
		}
		if name == "VmHWM" {
			m.HWMKB = v
		} else {
			m.RSSKB = v
		}
	}
	return m, nil
}

// procFS reads a /proc tree (a directory, so tests can use a fake one).
type procFS struct{ root string }

func (p procFS) stat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(p.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func (p procFS) status(pid int) (memStatus, error) {
	b, err := os.ReadFile(filepath.Join(p.root, strconv.Itoa(pid), "status"))
	if err != nil {
		return memStatus{}, err
	}
	return parseStatus(b)
}

// all returns the stat of every process; processes that exit while it
// reads are left out.
func (p procFS) all() (map[int]procStat, error) {
	ents, err := os.ReadDir(p.root)
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := p.stat(pid); err == nil {
			out[pid] = s
		}
	}
	return out, nil
}

// Usage is what one process tree used up to a moment.
type Usage struct {
	// CPUSeconds is user+system time of the root and its live descendants,
	// plus what its waited-for children used (so it never goes down while
	// the root lives).
	CPUSeconds float64 `json:"cpu_seconds"`
	// HWMMB and RSSMB are the root's peak and current resident memory.
	HWMMB float64 `json:"hwm_mb"`
	RSSMB float64 `json:"rss_mb"`
}

// treeUsage sums the CPU of root and its descendants in procs (a snapshot
// of all()); memory is the root's own.
func (p procFS) treeUsage(procs map[int]procStat, root int) (Usage, error) {
	rs, ok := procs[root]
	if !ok {
		return Usage{}, fmt.Errorf("process %d is gone", root)
	}
	children := map[int][]int{}
	for pid, s := range procs {
		children[s.ppid] = append(children[s.ppid], pid)
	}
	ticks := rs.cutime + rs.cstime
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		s := procs[pid]
		ticks += s.utime + s.stime
		stack = append(stack, children[pid]...)
	}
	u := Usage{CPUSeconds: float64(ticks) / clockTicks}
	if m, err := p.status(root); err == nil {
		u.HWMMB, u.RSSMB = float64(m.HWMKB)/1024, float64(m.RSSKB)/1024
	}
	return u, nil
}

// readPidFile returns the pid in the first line of a pid file (PostgreSQL's
// postmaster.pid, kafka.sh's kafka.pid).
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: no pid in %q", path, first)
	}
	return pid, nil
}

// Sampler takes the usage of named process trees at once.
type Sampler struct {
	fs       procFS
	roots    map[string]int // name -> root pid
	alone    map[string]bool
	restarts int // roots that changed pid (see runStep)
}

// NewSampler samples the real /proc.
func NewSampler() *Sampler {
	return &Sampler{fs: procFS{root: "/proc"}, roots: map[string]int{}, alone: map[string]bool{}}
}

// WatchAlone adds a process without its descendants (the bench itself,
// whose children are the pipelines, measured on their own).
func (s *Sampler) WatchAlone(name string, pid int) {
	s.roots[name] = pid
	s.alone[name] = true
}

// Watch adds (or replaces) a named tree.
func (s *Sampler) Watch(name string, pid int) { s.roots[name] = pid }

// Forget removes a named tree.
func (s *Sampler) Forget(name string) { delete(s.roots, name) }

// Take returns the usage of every watched tree; a tree whose root is gone
// is left out.
func (s *Sampler) Take() map[string]Usage {
	procs, err := s.fs.all()
	out := map[string]Usage{}
	if err != nil {
		return out
	}
	for name, pid := range s.roots {
		tree := procs
		if s.alone[name] {
			st, ok := procs[pid]
			if !ok {
				continue
			}
			st.cutime, st.cstime = 0, 0
			tree = map[int]procStat{pid: st}
		}
		if u, err := s.fs.treeUsage(tree, pid); err == nil {
			out[name] = u
		}
	}
	return out
}
