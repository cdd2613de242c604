package vfs

import (
	"os"
	"strings"
	"testing"
)

func TestReleaseAtLeast(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"5.8.0", true},
		{"5.7.19", false},
		{"6.18.44-fc-v657", true},
		{"5.10.0-13-amd64", true},
		{"5.19.0", true}, // a 9 is a digit
		{"4.19.0", false},
		{"5.8-rc1", true},
		{"5", false},
		{"", false},
		{"x.y", false},
		{"5.+9", false}, // a sign is no digit (strconv.Atoi would take it)
		{"6.-1", false},
	} {
		if got := releaseAtLeast(tc.rel, syncfsMinKernel); got != tc.want {
			t.Errorf("releaseAtLeast(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}

// TestSyncfsOnThisKernel: on a kernel whose release (read from /proc, not
// through uname as openSyncfs does) is at least syncfsMinKernel, the OS
// filesystem sync must be there, and work: TestOSFilesystemSync skips
// where it is not, and would pass if a bug took it away everywhere.
func TestSyncfsOnThisKernel(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	rel := strings.TrimSpace(string(b))
	if !releaseAtLeast(rel, syncfsMinKernel) {
		t.Skipf("Linux %s is older than %d.%d", rel, syncfsMinKernel[0], syncfsMinKernel[1])
	}
	if !kernelAtLeast(syncfsMinKernel) {
		t.Fatalf("kernelAtLeast(%v) = false on Linux %s", syncfsMinKernel, rel)
	}
	h, err := Default.(FilesystemSyncer).OpenFilesystemSync(t.TempDir())
	if err != nil {
		t.Fatalf("OpenFilesystemSync on Linux %s: %v", rel, err)
	}
	defer h.Close()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
}
