//go:build unix

package embedded

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName cannot collide with a topic: '#' is not allowed in names.
const lockFileName = "#lock"

// lockDir takes an exclusive flock on dir's lock file; closing the returned
// file releases it (and so does the process dying).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("directory in use by another Log (lock %s): %w", f.Name(), err)
	}
	return f, nil
}
