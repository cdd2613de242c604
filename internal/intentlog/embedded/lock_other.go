//go:build !unix

package embedded

import (
	"os"
	"path/filepath"
)

const lockFileName = "#lock"

// lockDir only creates the lock file: there is no flock here, so nothing
// stops two Logs from opening the same directory.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
}
