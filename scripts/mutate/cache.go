package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The mutants' build cache. Every mutant is a new build of its package
// and of the packages that import it, and go caches each one: a run over
// the core packages added gigabytes to the build cache, and a day of runs
// filled the disk (CI then failed with "no space left on device"). So the
// mutants build in a cache of their own. It is kept between runs: an empty
// cache costs each run a build of every dependency with -cover before the
// first mutant (15 to 40 minutes on a loaded 2-core machine, measured on
// 2026-12-01). Runs at the same time share it (go's cache is safe for
// that); each holds a shared lock on it for its whole life, and the run
// that ends last with the cache above its bound empties it.

// buildCache is the mutants' build cache held by one run.
type buildCache struct {
	dir  string
	lock *os.File
}

// openCache creates dir if needed and takes a shared lock on it.
func openCache(dir string) (*buildCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mutants' build cache: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".wail-mutate.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mutants' build cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("mutants' build cache: lock %s: %w", f.Name(), err)
	}
	return &buildCache{dir: dir, lock: f}, nil
}

// close releases the run's lock. When no other run holds the cache (its
// lock can be taken exclusively at once) and the cache holds more than max
// bytes, it is emptied; it reports whether it was.
func (c *buildCache) close(max int64) (bool, error) {
	defer c.lock.Close()
	err := syscall.Flock(int(c.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil // another run uses it: the last one decides
	}
	if err != nil {
		return false, fmt.Errorf("mutants' build cache: lock %s: %w", c.lock.Name(), err)
	}
	size, err := dirSize(c.dir)
	if err != nil || size <= max {
		return false, err
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name() == filepath.Base(c.lock.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.dir, e.Name())); err != nil {
			return false, fmt.Errorf("mutants' build cache: %w", err)
		}
	}
	return true, nil
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// defaultCacheDir is where the mutants' cache lives unless -cache says:
// the user's cache directory, or the temporary one.
func defaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "wail-mutate")
}
