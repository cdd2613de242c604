// Package servicetest decides what a test does when a real service or
// tool it needs (PostgreSQL, MariaDB, Kafka, Cassandra, kcat, chromium,
// promtool, python3 with confluent-kafka, a tmpfs mount) is not there:
// under CI (CI=true) the test fails, since CI must run every integration
// test; elsewhere it skips, telling how to start the service, and records
// the skip so that `make test` can say at the end, loudly, which
// integration suites did not run.
package servicetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// SkippedEnv names the file `make test` collects skips in: one line per
// skipped test, "package\ttest\twhy" (package: the test's directory
// relative to the module root, e.g. internal/store/postgres; test names
// alone repeat across packages: TestSuite is in several).
const SkippedEnv = "WAIL_SKIPPED"

var mu sync.Mutex

// Missing fails (under CI) or skips t because a service is missing; why
// says which and how to start it.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	if path := os.Getenv(SkippedEnv); path != "" {
		record(path, pkgDir()+"\t"+t.Name()+"\t"+strings.ReplaceAll(why, "\n", " "))
	}
	t.Skip(why)
}

// pkgDir is the running test's package: go test runs a test binary in
// its package's directory, named here relative to the module root (the
// nearest directory above with a go.mod), or absolute when there is none.
func pkgDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return filepath.ToSlash(rel)
			}
			return wd
		}
		up := filepath.Dir(dir)
		if up == dir {
			return wd
		}
		dir = up
	}
}

// record appends a line to path; a failure to record is not the test's
// failure (the skip message still shows with -v).
func record(path, line string) {
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}
