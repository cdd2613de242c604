package auth

import (
	"os"
	"sync"
	"time"
)

// Watched is a value loaded from files and loaded again when one of them
// changes (size, modification time, inode or mode: a file made writable by
// others is read again, and a check of its mode refuses it), checked at most once per
// interval, on use: certificates and the tokens file are renewed without
// a restart and without a goroutine. A load that fails keeps the last good
// value, reports the error to onError (nil once a load works again) and
// tries again at the next check.
type Watched[T any] struct {
	files    []string
	load     func() (T, error)
	interval time.Duration
	onError  func(error)
	now      func() time.Time

	mu      sync.Mutex
	value   T
	stamp   []stamp
	checked time.Time
	// failing: a load failed since the last good one.
	failing bool
}

type stamp struct {
	ok   bool
	size int64
	mod  time.Time
	mode os.FileMode
	sys  any
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{ok: true, size: fi.Size(), mod: fi.ModTime(), mode: fi.Mode(), sys: inode(fi)}
}

// Watch loads the value now (its error is returned) and returns the
// watcher.
func Watch[T any](files []string, interval time.Duration, load func() (T, error), onError func(error)) (*Watched[T], error) {
	if onError == nil {
		onError = func(error) {}
	}
	w := &Watched[T]{files: files, load: load, interval: interval, onError: onError, now: time.Now}
	w.stamp = w.stamps()
	v, err := load()
	if err != nil {
		return nil, err
	}
	w.value, w.checked = v, w.now()
	return w, nil
}

func (w *Watched[T]) stamps() []stamp {
	out := make([]stamp, len(w.files))
	for i, f := range w.files {
		out[i] = stampOf(f)
	}
	return out
}

// Get returns the value, loading it again first if a file changed.
func (w *Watched[T]) Get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if now.Sub(w.checked) < w.interval {
		return w.value
	}
	w.checked = now
	st := w.stamps()
	changed := false
	for i := range st {
		if st[i] != w.stamp[i] {
			changed = true
		}
	}
	if !changed {
		if w.failing {
			// The files are back as the last good load found them (a
			// mode put back, a bad renewal undone): that value is theirs.
			w.failing = false
			w.onError(nil)
		}
		return w.value
	}
	v, err := w.load()
	if err != nil {
		w.failing = true
		// Keep the old value and try again at the next check (a renewal
		// that writes the certificate, then the key, passes through a pair
		// that does not match).
		w.onError(err)
		return w.value
	}
	w.value, w.stamp, w.failing = v, st, false
	w.onError(nil)
	return w.value
}
