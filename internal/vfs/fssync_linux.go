package vfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncfsMinKernel is the first Linux release whose syncfs(2) reports
// write-back errors (errseq on the superblock, 5.8); before it, syncfs
// returned 0 even when pages were lost, so it cannot acknowledge writes.
var syncfsMinKernel = [2]int{5, 8}

type syncfs struct{ f *os.File }

func openSyncfs(dir string) (FilesystemSync, error) {
	if !kernelAtLeast(syncfsMinKernel) {
		return nil, fmt.Errorf("syncfs %s: needs Linux >= %d.%d to report write-back errors: %w",
			dir, syncfsMinKernel[0], syncfsMinKernel[1], ErrFilesystemSyncUnsupported)
	}
	// The handle samples the filesystem's error state when it opens: keep
	// it open for as long as its Syncs are relied on.
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return syncfs{f: f}, nil
}

func (s syncfs) Sync() error {
	for {
		err := unix.Syncfs(int(s.f.Fd()))
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		}
		return &os.PathError{Op: "syncfs", Path: s.f.Name(), Err: err}
	}
}

func (s syncfs) Close() error { return s.f.Close() }

// kernelAtLeast reports whether the running kernel's release is at least
// v (major, minor).
func kernelAtLeast(v [2]int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return releaseAtLeast(string(bytes.TrimRight(u.Release[:], "\x00")), v)
}

// releaseAtLeast reports whether a kernel release string ("6.1.0-13-amd64")
// is at least v; an unreadable one is not.
func releaseAtLeast(rel string, v [2]int) bool {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > v[0] || ma == v[0] && mi >= v[1]
}
