//go:build unix

package vfs

import "syscall"

// OpenFileLimit returns the soft and hard RLIMIT_NOFILE of the process.
func OpenFileLimit() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	return uint64(r.Cur), uint64(r.Max), nil
}

// RaiseOpenFileLimit raises the soft RLIMIT_NOFILE of the process to its
// hard limit (a server holds many segment files, store files and
// connections; the common soft default of 1024 is too low) and returns the
// new soft limit. It never lowers the limit.
func RaiseOpenFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur >= r.Max {
		return uint64(r.Cur), nil
	}
	want := r
	want.Cur = r.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return uint64(r.Cur), err
	}
	return uint64(want.Cur), nil
}
