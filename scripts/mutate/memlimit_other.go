//go:build !(linux || darwin || freebsd)

package main

import "errors"

// limitMemory is memlimit.go's, where there is no RLIMIT_DATA.
func limitMemory(mib int64) error {
	if mib <= 0 {
		return nil
	}
	return errors.New("-mem-max is not supported on this system (use -mem-max 0)")
}
