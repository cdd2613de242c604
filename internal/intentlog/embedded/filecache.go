package embedded

import (
	"container/list"
	"os"
	"sync"

	"github.com/wail-cdc/wail/internal/vfs"
)

// fileCache opens segment files lazily and keeps at most max of them open:
// a file nobody uses is closed, least recently used first, when another
// one must be opened, and when all max are in use (a reader's read, a
// writer's batch, a scan at Open) the next acquire waits for a release.
// No goroutine holds two segment files at once, so waiting cannot
// deadlock.
type fileCache struct {
	fs  vfs.FS
	max int

	mu   sync.Mutex
	cond *sync.Cond // signalled when a file is released or closed
	open int
	idle list.List // of *segment: open and unused, least recently used first
}

func newFileCache(fsys vfs.FS, max int) *fileCache {
	c := &fileCache{fs: fsys, max: max}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Fields of segment guarded by fileCache.mu: f, users, elem, forgotten.

// acquire returns s's open file, opening it when needed; release it.
func (c *fileCache) acquire(s *segment) (vfs.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.forgotten {
		return nil, &os.PathError{Op: "open", Path: s.logPath, Err: os.ErrClosed}
	}
	for s.f == nil && c.open >= c.max && c.idle.Len() == 0 {
		c.cond.Wait()
	}
	if s.forgotten {
		return nil, &os.PathError{Op: "open", Path: s.logPath, Err: os.ErrClosed}
	}
	if s.f == nil {
		c.evict(1)
		f, err := c.fs.OpenFile(s.logPath, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		s.f = f
		c.open++
	} else if s.elem != nil {
		c.idle.Remove(s.elem)
		s.elem = nil
	}
	s.users++
	return s.f, nil
}

// create opens a new file for s with open, within the budget, as if
// acquired.
func (c *fileCache) create(s *segment, open func() (vfs.File, error)) error {
	c.mu.Lock()
	for c.open >= c.max && c.idle.Len() == 0 {
		c.cond.Wait()
	}
	c.evict(1)
	c.open++ // reserved while opening
	c.mu.Unlock()
	f, err := open()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.open--
		c.cond.Broadcast()
		return err
	}
	s.f, s.users = f, 1
	return nil
}

// release ends a use of s's file.
func (c *fileCache) release(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.users--
	if s.users > 0 {
		return
	}
	if s.forgotten {
		c.closeLocked(s)
		return
	}
	s.elem = c.idle.PushBack(s)
	c.evict(0)
	c.cond.Broadcast()
}

// forget drops s for good (retention removed it, or the log closes): its
// file is closed now, or at its last release.
func (c *fileCache) forget(s *segment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.forgotten {
		return nil
	}
	s.forgotten = true
	if s.users > 0 || s.f == nil {
		return nil
	}
	return c.closeLocked(s)
}

func (c *fileCache) closeLocked(s *segment) error {
	if s.elem != nil {
		c.idle.Remove(s.elem)
		s.elem = nil
	}
	err := s.f.Close()
	s.f = nil
	c.open--
	c.cond.Broadcast()
	return err
}

// evict closes idle files until room more fit in the budget.
func (c *fileCache) evict(room int) {
	for c.open+room > c.max && c.idle.Len() > 0 {
		_ = c.closeLocked(c.idle.Front().Value.(*segment))
	}
}

// defaultMaxOpenFiles is a quarter of the soft RLIMIT_NOFILE (raise it
// first: see vfs.RaiseOpenFileLimit), between 64 and 4096; 256 when the
// limit is unknown. The rest is left to the store, connections and the
// Kafka client.
func defaultMaxOpenFiles() int {
	soft, _, err := vfs.OpenFileLimit()
	if err != nil {
		return 256
	}
	return maxOpenFilesFor(soft)
}

// maxOpenFilesFor is the default budget under a soft RLIMIT_NOFILE of soft.
func maxOpenFilesFor(soft uint64) int {
	return int(min(max(soft/4, 64), 4096))
}
