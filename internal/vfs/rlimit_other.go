//go:build !unix

package vfs

import "errors"

var errNoRlimit = errors.New("vfs: no RLIMIT_NOFILE on this platform")

// OpenFileLimit fails: there is no RLIMIT_NOFILE here.
func OpenFileLimit() (soft, hard uint64, err error) { return 0, 0, errNoRlimit }

// RaiseOpenFileLimit does nothing here.
func RaiseOpenFileLimit() (uint64, error) { return 0, errNoRlimit }
