package versus

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// statLine is a /proc/<pid>/stat line with the fields the bench reads.
func statLine(pid int, comm string, ppid int, ut, st, cut, cst uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 %d %d %d %d 20 0 3 0 12345 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
		pid, comm, ppid, pid, pid, ut, st, cut, cst)
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{name: "plain", line: statLine(10, "postgres", 1, 100, 50, 7, 3),
			want: procStat{ppid: 1, utime: 100, stime: 50, cutime: 7, cstime: 3, startedTicks: 12345, rssPages: 250}},
		{name: "command with spaces and parens", line: statLine(11, "postgres: wal sender (x) )", 10, 5, 6, 0, 0),
			want: procStat{ppid: 10, utime: 5, stime: 6, startedTicks: 12345, rssPages: 250}},
		{name: "no parenthesis", line: "10 postgres S 1", wantErr: true},
		{name: "truncated", line: "10 (p) S 1 10 10 0", wantErr: true},
		{name: "bad number", line: "10 (p) S 1 10 10 0 -1 4194560 100 0 0 0 x 50 7 3 20 0 3 0 12345 1000000 250", wantErr: true},
		{name: "bad ppid", line: "10 (p) S z 10 10 0 -1 4194560 100 0 0 0 1 50 7 3 20 0 3 0 12345 1000000 250", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    memStatus
		wantErr bool
	}{
		{name: "process", in: "Name:\tjava\nVmPeak:\t 9000000 kB\nVmHWM:\t  584048 kB\nVmRSS:\t  329988 kB\nThreads:\t38\n", want: memStatus{HWMKB: 584048, RSSKB: 329988}},
		{name: "kernel thread", in: "Name:\tkthreadd\nThreads:\t1\n"},
		{name: "bad unit", in: "VmHWM:\t 12 MB\n", wantErr: true},
		{name: "bad number", in: "VmRSS:\t x kB\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatus([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestTreeUsage: a fake /proc with a postmaster, two backends and an
// unrelated process; CPU is the tree's own plus the reaped children's.
func TestTreeUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(pid int, line, status string) {
		d := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(100, statLine(100, "postgres", 1, 200, 100, 40, 10), "VmHWM:\t 2048 kB\nVmRSS:\t 1024 kB\n")
	write(101, statLine(101, "postgres: walsender", 100, 30, 20, 0, 0), "")
	write(102, statLine(102, "postgres: wail wail", 101, 5, 5, 0, 0), "")
	write(200, statLine(200, "java", 1, 1000, 1000, 0, 0), "")
	if err := os.MkdirAll(filepath.Join(dir, "self"), 0o755); err != nil { // not a pid: ignored
		t.Fatal(err)
	}
	fs := procFS{root: dir}
	procs, err := fs.all()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    int
		want    Usage
		wantErr bool
	}{
		{name: "postmaster tree", root: 100, want: Usage{CPUSeconds: (200 + 100 + 40 + 10 + 30 + 20 + 5 + 5) / 100.0, HWMMB: 2, RSSMB: 1}},
		{name: "leaf", root: 102, want: Usage{CPUSeconds: 0.1}},
		{name: "gone", root: 300, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := fs.treeUsage(procs, tc.root)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if math.Abs(got.CPUSeconds-tc.want.CPUSeconds) > 1e-9 || got.HWMMB != tc.want.HWMMB || got.RSSMB != tc.want.RSSMB {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadPidFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          int
	}{
		{"postmaster.pid", "4242\n/var/lib/postgresql/15/wail\n1700000000\n5433\n", 4242},
		{"kafka.pid", "17786\n", 17786},
		{"empty", "", 0},
		{"garbage", "abc\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readPidFile(p)
			if got != tc.want || (err != nil) != (tc.want == 0) {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestSamplerAlone: a process watched alone excludes its children (the bench
// and the pipelines it starts).
func TestSamplerAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for pid, line := range map[int]string{
		10: statLine(10, "wail", 1, 100, 100, 50, 50),
		11: statLine(11, "wail serve", 10, 300, 100, 0, 0),
	} {
		d := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &Sampler{fs: procFS{root: dir}, roots: map[string]int{}, alone: map[string]bool{}}
	s.WatchAlone("loadgen", 10)
	s.Watch("pipeline", 11)
	got := s.Take()
	if got["loadgen"].CPUSeconds != 2 || got["pipeline"].CPUSeconds != 4 {
		t.Fatalf("got %+v, want loadgen 2 s (alone), pipeline 4 s", got)
	}
}
