package main

import "syscall"

// limitMemory caps the data segment (RLIMIT_DATA: heap and other private
// writable memory) of this process at mib MiB; the limit is inherited by
// everything it starts (gremlins, go, the compiler, every mutant's test
// binary). A mutant that makes a test allocate without end then dies with
// "out of memory" (its tests fail: killed) instead of taking the
// machine's memory: one resolver mutant grew a test binary to 19 GB and
// froze a 24 GB machine shared by three runs for 20 minutes, its test
// timeout included. 0 leaves the limit as it is.
func limitMemory(mib int64) error {
	if mib <= 0 {
		return nil
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_DATA, &lim); err != nil {
		return err
	}
	want := uint64(mib) << 20
	// Never above the hard limit: raising it needs privileges (an
	// unlimited hard limit is the largest value, so min keeps want).
	want = min(want, lim.Max)
	lim.Cur = want
	return syscall.Setrlimit(syscall.RLIMIT_DATA, &lim)
}
