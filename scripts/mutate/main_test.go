package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	src := "package x\n\nif a > b {\n\tx = 1 + 2 + 3\n}\n"
	res := &result{Files: []fileResult{{FileName: "x.go"}}}
	add := func(typ, status string, line int) {
		res.Files[0].Mutations = append(res.Files[0].Mutations, mutation{typ, status, line, 1})
	}
	add("CONDITIONALS_BOUNDARY", "LIVED", 3) // judged below
	add("CONDITIONALS_NEGATION", "LIVED", 3) // a hole
	res.Files[0].Mutations = append(res.Files[0].Mutations,
		mutation{"ARITHMETIC_BASE", "LIVED", 4, 3}, // judged at its column
		mutation{"ARITHMETIC_BASE", "LIVED", 4, 5}) // another column of the line: a hole
	add("INCREMENT_DECREMENT", "KILLED", 4)
	add("INCREMENT_DECREMENT", "TIMED OUT", 4)
	add("ARITHMETIC_BASE", "NOT COVERED", 4)
	judged := map[string]string{"pkg/x.go|CONDITIONALS_BOUNDARY|if a > b {": "equal values", "pkg/x.go#3|ARITHMETIC_BASE|x = 1 + 2 + 3": "why"}
	r, err := judge("pkg", res, judged, func(p string) ([]byte, error) {
		if p != filepath.Join("pkg", "x.go") {
			t.Fatalf("read %s", p)
		}
		return []byte(src), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.killed != 1 || r.timedOut != 1 || r.lived != 4 || r.notCovered != 1 || len(r.equivalent) != 2 || len(r.unjudged) != 2 {
		t.Fatalf("report %+v", r)
	}
	if r.unjudged[0].Type != "CONDITIONALS_NEGATION" || r.unjudged[0].Source != "if a > b {" {
		t.Fatalf("unjudged %+v", r.unjudged[0])
	}
	if r.unjudged[1].Type != "ARITHMETIC_BASE" || r.unjudged[1].Column != 5 {
		t.Fatalf("unjudged %+v", r.unjudged[1])
	}
	if len(r.timeouts) != 1 || r.timeouts[0].Source != "x = 1 + 2 + 3" || r.timeouts[0].Line != 4 {
		t.Fatalf("timeouts %+v", r.timeouts)
	}
	// 2 killed (one by timeout) of 4 real mutants.
	if got := r.score(); got != 50 {
		t.Fatalf("score %.2f, want 50", got)
	}
	if got := r.raw(); got < 33.3 || got > 33.4 {
		t.Fatalf("raw %.2f, want 33.33", got)
	}
}

func TestReadJudged(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("# comment\n\na.go | X | if a { | why\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := readJudged(good)
	if err != nil || m["a.go|X|if a {"] != "why" {
		t.Fatalf("%v, %v", m, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("a.go | X | if a {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readJudged(bad); err == nil {
		t.Fatal("a line without a reason was accepted")
	}
}

func TestCoefficientFor(t *testing.T) {
	for _, c := range []struct {
		run, min time.Duration
		want     int
	}{
		{time.Second, 2 * time.Minute, 120},
		{50 * time.Second, 2 * time.Minute, 5},
		{30 * time.Second, 2 * time.Minute, 5},
		{25 * time.Second, 2 * time.Minute, 5},
		{23 * time.Second, 2 * time.Minute, 6},
		{0, time.Minute, 60000},
	} {
		if got := coefficientFor(c.run, c.min); got != c.want {
			t.Errorf("coefficientFor(%v, %v) = %d, want %d", c.run, c.min, got, c.want)
		}
	}
}

func TestExcludeFiles(t *testing.T) {
	dir := t.TempDir()
	// sub is a package below (gremlins mutates the whole tree: with
	// -files '^epochs\.go$' internal/intentlog it mutated
	// embedded/batch.go); its files are never the package's.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"core.go", "core_test.go", "loop.go", "loop2.go", "doc.go", "sub/core.go", "sub/x.go", "sub/x_test.go"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		only string
		want string // the excluded files; "error" when the pattern matches none
	}{
		{"", "[]"},
		{`^core\.go$`, "[doc.go loop.go loop2.go sub/core.go sub/x.go]"},
		{"loop", "[core.go doc.go sub/core.go sub/x.go]"},
		{"test", "error"}, // test files are never mutated: nothing matches
		{"nosuch", "error"},
	} {
		var only *regexp.Regexp
		if c.only != "" {
			only = regexp.MustCompile(c.only)
		}
		got, err := excludeFiles(dir, only)
		if s := fmt.Sprint(got); err != nil && c.want != "error" || err == nil && s != c.want {
			t.Errorf("excludeFiles(%q) = %v, %v; want %s", c.only, got, err, c.want)
		}
	}
}

// TestPackages: a package given as ./dir is dir (cases.go matches
// gremlins' files by it); none given is the core packages.
func TestPackages(t *testing.T) {
	if got := packages([]string{"./internal/resolver", "internal/hlc/"}); len(got) != 2 || got[0] != "internal/resolver" || got[1] != "internal/hlc" {
		t.Fatalf("packages: %q", got)
	}
	if got := packages(nil); len(got) != len(corePackages) {
		t.Fatalf("packages(nil): %q", got)
	}
	if !inPackageDir(packages([]string{"./internal/resolver"})[0], "internal/resolver/publish.go") {
		t.Fatal("a file of ./internal/resolver is not in its package")
	}
}

// TestLimitMemory: a process under limitMemory that allocates past the
// limit dies (a real child process: the test binary run again), and one
// that stays under it lives (the runtime says "out of memory" in one of
// several fatal errors, depending on which allocation failed). The race detector's runtime cannot start
// under a 256 MiB data limit (mutants never run with it), so under -race
// the test runs itself again in a build without it.
func TestLimitMemory(t *testing.T) {
	if raceEnabled {
		out, err := exec.Command("go", "test", "-count=1", "-run", "^TestLimitMemory$", ".").CombinedOutput()
		if err != nil {
			t.Fatalf("TestLimitMemory without -race: %v\n%s", err, out)
		}
		return
	}
	if mib := os.Getenv("WAIL_MUTATE_ALLOC_MIB"); mib != "" {
		if err := limitMemory(256); err != nil {
			fmt.Println("limit:", err)
			os.Exit(3)
		}
		var n int
		fmt.Sscan(mib, &n)
		keep := make([][]byte, 0, n)
		for range n {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
		os.Exit(0)
	}
	for _, tc := range []struct {
		mib  int
		dies bool
	}{{64, false}, {1024, true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLimitMemory$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("WAIL_MUTATE_ALLOC_MIB=%d", tc.mib))
		out, err := cmd.CombinedOutput()
		switch {
		case tc.dies && (err == nil || !strings.Contains(string(out), "fatal error: ") || !strings.Contains(string(out), "out of memory")):
			t.Errorf("%d MiB under a 256 MiB limit: err %v, want the runtime to fail to allocate\n%.2000s", tc.mib, err, out)
		case !tc.dies && err != nil:
			t.Errorf("%d MiB under a 256 MiB limit: %v\n%.2000s", tc.mib, err, out)
		}
	}
}
