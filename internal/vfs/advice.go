package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// AccessAdvice is err with what to do when it says the data dir dir may
// not be written by this process: a permission refused (the dir belongs
// to another user) or a read-only file system. It is nil for any other
// error. The embedded log and the Pebble store both fail their start with
// it.
func AccessAdvice(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w; the data dir must belong to the user wail runs as: give it to that user (chown -R USER %s, with the rest of the data dir) "+
			"or run wail as its owner (ls -ln %s), and start again", err, dir, dir)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w; mount its file system read-write (findmnt -T %s), and start again; "+
			"if the kernel remounted it read-only after errors, check the disk first (dmesg, smartctl -a)", err, dir)
	}
	return nil
}
