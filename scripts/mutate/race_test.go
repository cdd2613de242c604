//go:build race

package main

// raceEnabled: the tests run under the race detector, whose runtime
// (ThreadSanitizer) maps far more memory than a small RLIMIT_DATA allows.
const raceEnabled = true
