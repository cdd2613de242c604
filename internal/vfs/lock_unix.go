//go:build unix

package vfs

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on name; closing the returned file
// releases it (and so does the process dying).
func lockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: held by another process (or by another open in this one): %w", name, err)
	}
	return f, nil
}
