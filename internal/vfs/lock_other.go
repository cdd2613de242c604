//go:build !unix

package vfs

import (
	"io"
	"os"
)

// lockFile only creates the file: there is no flock here, so nothing stops
// two processes from taking the same lock.
func lockFile(name string) (io.Closer, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
}
