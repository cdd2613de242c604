//go:build unix

package vfs

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const rlimitChildEnv = "WAIL_VFS_RLIMIT_CHILD"

// TestHelperRaise is the child of TestRaiseOpenFileLimit: it lowers its soft
// limit, raises it again and prints the limits.
func TestHelperRaise(t *testing.T) {
	if os.Getenv(rlimitChildEnv) == "" {
		t.Skip("only runs as the child of TestRaiseOpenFileLimit")
	}
	_, hard, err := OpenFileLimit()
	must(t, err)
	must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: hard}))
	got, err := RaiseOpenFileLimit()
	must(t, err)
	soft, _, err := OpenFileLimit()
	must(t, err)
	again, err := RaiseOpenFileLimit()
	must(t, err)
	fmt.Printf("raised=%d soft=%d hard=%d again=%d\n", got, soft, hard, again)
}

// TestRaiseOpenFileLimit runs in a child process, so that lowering the
// limit cannot disturb other tests.
func TestRaiseOpenFileLimit(t *testing.T) {
	_, hard, err := OpenFileLimit()
	must(t, err)
	if hard <= 64 {
		t.Skipf("hard limit %d too low for the test", hard)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRaise$", "-test.v")
	cmd.Env = append(os.Environ(), rlimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("raised=%d soft=%d hard=%d again=%d", hard, hard, hard, hard)
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("child: %v, want %q in:\n%s", err, want, out)
	}
}
