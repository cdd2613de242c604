package embedded

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/vfs"
)

// TestFileCache walks the descriptor budget (2 files) through its rules:
// idle files stay open up to the budget; reusing one opens nothing; room
// is made by closing the least recently used idle file; when every file is
// in use, the next acquire and create wait for a release; a forgotten file
// closes at once when idle, or at its last release when in use; a failed
// create gives its reserved place back.
func TestFileCache(t *testing.T) {
	mem := vfs.NewMem()
	fsys := &countingFS{FS: mem}
	segs := make([]*segment, 5)
	for i := range segs {
		segs[i] = newSegment("/", int64(i))
		if i < 4 {
			writeFile(t, mem, segs[i].logPath, []byte{byte(i)})
		}
	}
	a, b, c, d, e := segs[0], segs[1], segs[2], segs[3], segs[4]
	cache := newFileCache(fsys, 2)
	check := func(step string, open, total int, openSegs ...*segment) {
		t.Helper()
		fsys.mu.Lock()
		defer fsys.mu.Unlock()
		if cache.open != open || fsys.open != open || fsys.total != total || fsys.max > 2 {
			t.Fatalf("%s: cache counts %d open, the FS %d (at most %d), %d opened in all; want %d open, %d in all",
				step, cache.open, fsys.open, fsys.max, fsys.total, open, total)
		}
		idle := 0
		for _, s := range segs {
			if s.f != nil && s.users == 0 {
				idle++
			}
		}
		if cache.idle.Len() != idle {
			t.Fatalf("%s: %d files in the idle list, %d open and unused", step, cache.idle.Len(), idle)
		}
		for _, s := range segs {
			want := false
			for _, o := range openSegs {
				want = want || o == s
			}
			if (s.f != nil) != want {
				t.Fatalf("%s: %s open: %v, want %v", step, s.logPath, s.f != nil, want)
			}
		}
	}
	use := func(s *segment) {
		t.Helper()
		f, err := cache.acquire(s)
		noErr(t, err)
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, 0); err != nil || b[0] != byte(s.base) {
			t.Fatalf("%s: read %v, %v", s.logPath, b, err)
		}
	}
	use(a)
	cache.release(a)
	use(b)
	cache.release(b)
	check("two idle files", 2, 2, a, b)
	use(a)
	cache.release(a)
	check("an idle file reused", 2, 2, a, b)
	use(c) // b is the least recently used
	check("room made", 2, 3, a, c)
	use(a)
	check("both in use", 2, 3, a, c)

	waits := func(what string, start func() error, release func()) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- start() }()
		select {
		case err := <-done:
			t.Fatalf("%s with every file in use did not wait: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
		release()
		noErr(t, <-done)
	}
	waits("acquire", func() error { _, err := cache.acquire(b); return err }, func() { cache.release(a) })
	check("acquired after a release", 2, 4, b, c)

	noErr(t, cache.forget(c))
	check("forgotten while in use: still open", 2, 4, b, c)
	if _, err := cache.acquire(c); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("acquire of a forgotten segment: %v, want ErrClosed", err)
	}
	cache.release(c)
	check("forgotten, closed at its last release", 1, 4, b)
	cache.release(b)
	noErr(t, cache.forget(b))
	check("forgotten when idle: closed at once", 0, 4)
	noErr(t, cache.forget(b))

	failed := errors.New("create failed")
	for range 3 {
		if err := cache.create(e, func() (vfs.File, error) { return nil, failed }); err != failed {
			t.Fatalf("create: %v, want its open's error", err)
		}
		check("a failed create gives its place back", 0, 4)
	}
	use(a)
	use(d)
	check("full again", 2, 6, a, d)
	waits("create", func() error {
		return cache.create(e, func() (vfs.File, error) { return fsys.OpenFile("/e.log", os.O_RDWR|os.O_CREATE, 0o644) })
	}, func() { cache.release(d) })
	check("created after a release", 2, 7, a, e)
	cache.release(a)
	cache.release(e)
	for _, s := range segs {
		noErr(t, cache.forget(s))
	}
	check("all forgotten", 0, 7)
}

func TestMaxOpenFilesDefault(t *testing.T) {
	for soft, want := range map[uint64]int{0: 64, 100: 64, 256: 64, 1024: 256, 16384: 4096, 20000: 4096, 1 << 40: 4096} {
		if got := maxOpenFilesFor(soft); got != want {
			t.Errorf("maxOpenFilesFor(%d) = %d, want %d", soft, got, want)
		}
	}
	soft, _, err := vfs.OpenFileLimit()
	if err != nil {
		t.Skipf("no RLIMIT_NOFILE here: %v", err)
	}
	if got, want := defaultMaxOpenFiles(), maxOpenFilesFor(soft); got != want {
		t.Errorf("defaultMaxOpenFiles() = %d under a soft limit of %d, want %d", got, soft, want)
	}
}
