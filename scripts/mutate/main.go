// Command mutate runs mutation testing (gremlins) over wail's core packages
// and reports, per package, how many mutants the tests kill. A mutant that
// lives is a one-line change to the code that every test of its package
// lets through: either the tests miss a behaviour, or the change is
// equivalent (it cannot change what the code does). Equivalent survivors
// are listed, each with the reason, in judged.txt beside this file; every
// other survivor is a hole in the tests. Gremlins never runs the mutants
// of switch case expressions (and a select's comm clauses), package-level
// declarations and code after a function literal in the same statement
// (they lie in no coverage block): this command runs them itself
// (cases.go).
//
//	go run ./scripts/mutate [-workers N] [-threshold 90] [-min-timeout 2m] [-cases=false] [-files REGEXP]
//	    [-cache DIR] [-cache-max MiB] [-mem-max MiB] [-judged FILE] [pkg ...]
//
// -mem-max (4096 MiB) caps the memory of each process of the run, the
// mutants' test binaries included (memlimit.go).
//
// -files mutates only the package files whose base name matches (to rerun
// one file after adding a test); the scores then cover those files only.
//
// It exits non-zero when a package's score (killed over killed plus
// lived, judged equivalents left out) is below the threshold, or when a
// survivor is not judged. `make mutate` runs it; CI runs it too.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// gremlins is the mutation tool, run with `go run` so nothing needs
// installing (the module proxy serves it).
const gremlins = "github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0"

// corePackages are the packages the invariants rest on (vfs: the
// embedded log's durability tests rest on its fault injection and crash
// simulation).
var corePackages = []string{
	"internal/resolver", "internal/proxy", "internal/hlc",
	"internal/intentlog/embedded", "internal/vfs", "internal/store/pebble", "internal/eventbus",
}

func main() {
	os.Exit(run())
}

// run is main with an exit code, so that its deferred clean-up runs.
func run() int {
	workers := flag.Int("workers", 2, "mutants tested at once")
	minTimeout := flag.Duration("min-timeout", 2*time.Minute, "least time a mutant's build and test run gets before it counts as hung")
	threshold := flag.Float64("threshold", 90, "lowest acceptable score per package, in percent")
	cases := flag.Bool("cases", true, "also run the mutants in switch case expressions, which gremlins reports NOT COVERED (cases.go)")
	files := flag.String("files", "", "mutate only the files whose base name matches this regexp (default: every file)")
	cacheDir := flag.String("cache", defaultCacheDir(), "the mutants' build cache, kept between runs (WAIL_MUTATE_KEEP_CACHE=1: the usual GOCACHE instead)")
	cacheMax := flag.Int64("cache-max", 4096, "MiB: the last run to end empties the mutants' build cache when it holds more")
	judgedPath := flag.String("judged", filepath.Join("scripts", "mutate", "judged.txt"), "the judged survivors")
	memMax := flag.Int64("mem-max", 4096, "MiB: the data segment of every process of the run at most (RLIMIT_DATA; a mutant whose tests allocate without end dies and counts as killed; 0: no limit)")
	flag.Parse()
	if err := limitMemory(*memMax); err != nil {
		fmt.Fprintln(os.Stderr, "mutate: -mem-max:", err)
		return 2
	}
	pkgs := packages(flag.Args())
	judged, err := readJudged(*judgedPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		return 2
	}
	// The mutants build in a cache of their own, kept between runs and
	// emptied past -cache-max (cache.go); WAIL_MUTATE_KEEP_CACHE builds
	// them in the usual GOCACHE instead.
	if os.Getenv("WAIL_MUTATE_KEEP_CACHE") == "" {
		c, err := openCache(*cacheDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mutate:", err)
			return 2
		}
		defer func() {
			emptied, err := c.close(*cacheMax << 20)
			switch {
			case err != nil:
				fmt.Fprintln(os.Stderr, "mutate:", err)
			case emptied:
				fmt.Fprintf(os.Stderr, "mutate: emptied the mutants' build cache %s (over -cache-max %d MiB)\n", c.dir, *cacheMax)
			}
		}()
		os.Setenv("GOCACHE", c.dir)
	}
	var only *regexp.Regexp
	if *files != "" {
		if only, err = regexp.Compile(*files); err != nil {
			fmt.Fprintln(os.Stderr, "mutate: -files:", err)
			return 2
		}
	}
	var reports []report
	failed := false
	for _, pkg := range pkgs {
		res, err := unleash(pkg, *workers, *minTimeout, only)
		if err == nil && *cases {
			_, err = runCases(pkg, res, *minTimeout)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %s: %v\n", pkg, err)
			return 2
		}
		r, err := judge(pkg, res, judged, os.ReadFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %s: %v\n", pkg, err)
			return 2
		}
		reports = append(reports, r)
		if r.score() < *threshold || len(r.unjudged) > 0 {
			failed = true
		}
	}
	print(os.Stdout, reports, *threshold)
	if failed {
		return 1
	}
	return 0
}

// packageDir turns a package argument into the module-relative directory
// the rest of the command expects: "./internal/x/" is "internal/x". The
// case runner matches coverage profile names against it, so with a
// leading "./" it found no switch reached and ran none of its mutants,
// silently leaving them NOT COVERED.
func packageDir(arg string) string {
	return filepath.ToSlash(filepath.Clean(arg))
}

// packages returns the packages to mutate: args as directories relative
// to the module root ("./internal/resolver" is "internal/resolver": the
// case mutants are matched to gremlins' files by that path, and with the
// "./" they were all skipped), or the core packages when there are none.
func packages(args []string) []string {
	if len(args) == 0 {
		return corePackages
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = packageDir(a)
	}
	return out
}

// result is gremlins' machine-readable output (-o).
type result struct {
	Files []fileResult `json:"files"`
}

type fileResult struct {
	FileName  string     `json:"file_name"`
	Mutations []mutation `json:"mutations"`
}

type mutation struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func unleash(pkg string, workers int, minTimeout time.Duration, only *regexp.Regexp) (*result, error) {
	excluded, err := excludeFiles(pkg, only)
	if err != nil {
		return nil, err
	}
	coef, err := timeoutCoefficient(pkg, minTimeout)
	if err != nil {
		return nil, err
	}
	out, err := os.CreateTemp("", "gremlins-*.json")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	args := []string{"run", gremlins, "unleash", "--workers", fmt.Sprint(workers),
		"--timeout-coefficient", fmt.Sprint(coef), "-o", out.Name()}
	for _, name := range excluded {
		args = append(args, "--exclude-files", "(^|/)"+regexp.QuoteMeta(name)+"$")
	}
	cmd := exec.Command("go", append(args, "./"+pkg)...)
	// gremlins prints each mutant's status as it is tested (on stderr, so
	// that a long run shows its progress and survivors early).
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Never take the coverage run from the test cache (see
	// timeoutCoefficient).
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -count=1"))
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gremlins: %w", err)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return nil, err
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("gremlins output: %w", err)
	}
	return &r, nil
}

// excludeFiles lists the package's source files (not tests) whose base
// name only does not match, and every source file of the packages below
// it, by their path under the package: gremlins leaves them unmutated
// (it mutates the whole tree: with -files '^epochs\.go$' internal/intentlog
// it mutated embedded's files too). An only that matches no file is an
// error (a typo would otherwise report 100%).
func excludeFiles(pkg string, only *regexp.Regexp) ([]string, error) {
	if only == nil {
		return nil, nil
	}
	var out []string
	matched := 0
	err := filepath.WalkDir(pkg, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		if !strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(pkg, path)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); rel == base && only.MatchString(base) {
			matched++
			return nil
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if matched == 0 {
		return nil, fmt.Errorf("-files %q matches no source file of %s", only, pkg)
	}
	return out, nil
}

// timeoutCoefficient runs the package's tests (they must pass) and
// returns gremlins' timeout coefficient: a mutant counts as hung after that
// many times the duration of gremlins' coverage run, at least 5, and at
// least minTimeout. The coverage run reuses the build cache, but a mutant
// compiles its package and links its test binary again, which on a loaded
// machine takes far longer than running the tests: without the floor,
// mutants time out while compiling and count as killed. The tests run
// twice and the second run is the one measured: like gremlins' coverage
// run it finds the instrumented build in the cache (the first one, which
// builds it, took about twice as long on a loaded machine and made the
// floor about half of minTimeout).
func timeoutCoefficient(pkg string, minTimeout time.Duration) (int, error) {
	var took time.Duration
	for range 2 {
		start := time.Now()
		out, err := exec.Command("go", "test", "-count=1", "-cover", "./"+pkg+"/...").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("tests fail before any mutation: %w\n%s", err, out)
		}
		took = time.Since(start)
	}
	return coefficientFor(took, minTimeout), nil
}

func coefficientFor(run, minTimeout time.Duration) int {
	return max(5, int(math.Ceil(float64(minTimeout)/float64(max(run, time.Millisecond)))))
}

// survivor is a mutant that lived.
type survivor struct {
	File, Type, Source string
	Line, Column       int
	Reason             string // why it is equivalent, when judged
}

func (s survivor) key() string { return s.File + "|" + s.Type + "|" + s.Source }

// keyAt is key for judged lines that name the mutant's column: a line
// with two mutants of one mutator, one killed and one equivalent.
func (s survivor) keyAt() string {
	return fmt.Sprintf("%s#%d|%s|%s", s.File, s.Column, s.Type, s.Source)
}

type report struct {
	pkg                                 string
	killed, lived, timedOut, notCovered int
	notViable                           int
	equivalent                          []survivor
	unjudged                            []survivor
	timeouts                            []survivor // counted as killed: check each is a real hang, not load
}

// score is killed over killed plus lived, judged equivalents left out;
// a timed-out mutant counts as killed (the tests noticed: they hung).
func (r report) score() float64 {
	killed := r.killed + r.timedOut
	real := killed + r.lived - len(r.equivalent)
	if real <= 0 {
		return 100
	}
	return 100 * float64(killed) / float64(real)
}

func (r report) raw() float64 {
	killed := r.killed + r.timedOut
	if killed+r.lived == 0 {
		return 100
	}
	return 100 * float64(killed) / float64(killed+r.lived)
}

// judge counts a package's mutants and sorts its survivors into judged
// equivalents and holes. Survivors are matched to judged.txt by file,
// mutator and the text of their source line, so edits elsewhere in the
// file do not unjudge them.
func judge(pkg string, res *result, judged map[string]string, read func(string) ([]byte, error)) (report, error) {
	r := report{pkg: pkg}
	for _, f := range res.Files {
		path := filepath.Join(pkg, filepath.Base(f.FileName))
		var lines []string
		at := func(m mutation) (survivor, error) {
			if lines == nil {
				b, err := read(path)
				if err != nil {
					return survivor{}, err
				}
				lines = strings.Split(string(b), "\n")
			}
			s := survivor{File: path, Type: m.Type, Line: m.Line, Column: m.Column}
			if m.Line >= 1 && m.Line <= len(lines) {
				s.Source = strings.TrimSpace(lines[m.Line-1])
			}
			return s, nil
		}
		for _, m := range f.Mutations {
			switch m.Status {
			case "KILLED":
				r.killed++
			case "TIMED OUT":
				r.timedOut++
				s, err := at(m)
				if err != nil {
					return r, err
				}
				r.timeouts = append(r.timeouts, s)
			case "NOT COVERED":
				r.notCovered++
			case "NOT VIABLE":
				r.notViable++
			case "LIVED":
				r.lived++
				s, err := at(m)
				if err != nil {
					return r, err
				}
				why, ok := judged[s.keyAt()]
				if !ok {
					why, ok = judged[s.key()]
				}
				if ok {
					s.Reason = why
					r.equivalent = append(r.equivalent, s)
				} else {
					r.unjudged = append(r.unjudged, s)
				}
			}
		}
	}
	return r, nil
}

// readJudged reads judged.txt: one survivor per line as
// "file | MUTATOR | source line | why it is equivalent", or "file#column |
// ..." to judge one mutant of a line with more of that mutator; # starts
// a comment.
func readJudged(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, " | ", 4)
		if len(parts) != 4 || strings.TrimSpace(parts[3]) == "" {
			return nil, fmt.Errorf("%s:%d: want \"file | MUTATOR | source line | why\"", path, n)
		}
		s := survivor{File: strings.TrimSpace(parts[0]), Type: strings.TrimSpace(parts[1]), Source: strings.TrimSpace(parts[2])}
		out[s.key()] = strings.TrimSpace(parts[3])
	}
	return out, sc.Err()
}

func print(w io.Writer, reports []report, threshold float64) {
	fmt.Fprintf(w, "%-30s %7s %6s %6s %8s %10s %6s %7s\n", "package", "killed", "lived", "equiv", "timeout", "uncovered", "raw%", "score%")
	for _, r := range reports {
		mark := ""
		if r.score() < threshold || len(r.unjudged) > 0 {
			mark = "  <- FAIL"
		}
		fmt.Fprintf(w, "%-30s %7d %6d %6d %8d %10d %6.1f %7.1f%s\n", r.pkg, r.killed, r.lived, len(r.equivalent),
			r.timedOut, r.notCovered, r.raw(), r.score(), mark)
	}
	for _, r := range reports {
		sort.Slice(r.unjudged, func(i, j int) bool { return r.unjudged[i].Line < r.unjudged[j].Line })
		for _, s := range r.unjudged {
			fmt.Fprintf(w, "LIVED %s:%d:%d %s: %s\n", s.File, s.Line, s.Column, s.Type, s.Source)
		}
		for _, s := range r.equivalent {
			fmt.Fprintf(w, "equivalent %s:%d %s: %s (%s)\n", s.File, s.Line, s.Type, s.Source, s.Reason)
		}
		sort.Slice(r.timeouts, func(i, j int) bool { return r.timeouts[i].Line < r.timeouts[j].Line })
		for _, s := range r.timeouts {
			fmt.Fprintf(w, "TIMED OUT %s:%d:%d %s: %s\n", s.File, s.Line, s.Column, s.Type, s.Source)
		}
	}
	fmt.Fprintf(w, "score: killed / (killed + lived - judged equivalent), timeouts count as killed "+
		"(each is listed: check it is a real hang, not load); threshold %.0f%%\n", threshold)
}
