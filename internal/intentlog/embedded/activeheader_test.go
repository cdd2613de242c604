package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestActiveHeaderDamageInHealth: damage at rest in the header of an
// indexed batch of the active segment (its base offset changed: bit rot)
// no longer matches the writer's index entry. The read fails with
// ErrCorrupt, as for damage elsewhere, and Health shows it as
// ErrReadCorrupt at that batch (not a stale index: the active segment's
// index is the writer's own), so a person learns of it; it clears once
// the batch reads fine again.
func TestActiveHeaderDamageInHealth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hl := &healthLog{}
	l := openLog(t, dir, Options{IndexIntervalBytes: 64, OnHealth: hl.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	s, index, path := activeBatches(t, l, dir, 20)
	if len(index) < 3 {
		t.Fatalf("%d index entries; want 3 or more", len(index))
	}
	e := index[2]
	flipByte(16)(t, path, int64(e.pos)) // the base offset's low byte
	r, err := l.NewReader(testTopic, 0, s.base+int64(e.rel))
	noErr(t, err)
	defer r.Close()
	if _, err := r.Next(context.Background()); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("read of a damaged batch header in the active segment: %v, want ErrCorrupt", err)
	}
	h := l.Health()
	if !errors.Is(h, ErrReadCorrupt) || !strings.Contains(h.Error(), fmt.Sprintf("%s at position %d", path, e.pos)) ||
		!strings.Contains(h.Error(), fmt.Sprintf("(offset %d, timestamp %d)", s.base+int64(e.rel), e.ts)) {
		t.Fatalf("Health after a read met a damaged header in the active segment: %v; want ErrReadCorrupt at %s position %d, naming offset %d and timestamp %d",
			h, path, e.pos, s.base+int64(e.rel), e.ts)
	}
	if n, last := hl.last(); n != 1 || !errors.Is(last, ErrReadCorrupt) {
		t.Fatalf("OnHealth: %d calls, last %v; want one with ErrReadCorrupt", n, last)
	}
	flipByte(16)(t, path, int64(e.pos)) // the bytes read fine again
	r2, err := l.NewReader(testTopic, 0, s.base+int64(e.rel))
	noErr(t, err)
	defer r2.Close()
	if _, err := r2.Next(context.Background()); err != nil {
		t.Fatalf("read once the header is sound: %v", err)
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health after the batch read fine again: %v", h)
	}
}

// TestActiveMismatchReadFails: when a batch of the active segment does not
// match its index entry, activeMismatch reads the headers at the entries
// to find the damaged one. When that read fails with an I/O error (the
// segment file cannot be opened, a header's bytes cannot be read), the
// read fails with ErrStorage and the cause, not with ErrCorrupt (the disk
// failed, nothing is known to be damaged), shows in Health as
// ErrReadFailing, as any read's I/O error does, and nothing is left
// acquired in the file cache.
func TestActiveMismatchReadFails(t *testing.T) {
	cases := []struct {
		name string
		// fail injects the fault; read reads as a reader would, from the
		// entry whose batch was damaged, and returns the error.
		fail func(t *testing.T, l *Log, efs *vfs.ErrorFS, s *segment, index []indexEntry)
		read func(t *testing.T, l *Log, s *segment, index []indexEntry, e indexEntry) error
	}{
		{"header read fails", func(t *testing.T, _ *Log, efs *vfs.ErrorFS, _ *segment, index []indexEntry) {
			// Only the bytes of the first entry's header: the reader's own
			// read (from the damaged entry on) gets through.
			efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log", Bytes: [2]int64{int64(index[0].pos), int64(index[0].pos) + 1}})
		}, func(t *testing.T, l *Log, s *segment, _ []indexEntry, e indexEntry) error {
			r, err := l.NewReader(testTopic, 0, s.base+int64(e.rel))
			noErr(t, err)
			defer r.Close()
			_, err = r.Next(context.Background())
			return err
		}},
		{"segment cannot be opened", func(t *testing.T, l *Log, efs *vfs.ErrorFS, s *segment, _ []indexEntry) {
			// The active segment's file closed while idle (the cache's
			// budget taken by other segments' reads), and its open fails.
			l.files.mu.Lock()
			if s.users != 0 || s.elem == nil {
				l.files.mu.Unlock()
				t.Fatalf("active segment file: %d users, idle %v; want idle", s.users, s.elem != nil)
			}
			_ = l.files.closeLocked(s)
			l.files.mu.Unlock()
			efs.Inject(vfs.Fault{Ops: vfs.OpOpen, Path: "*.log"})
		}, func(t *testing.T, l *Log, s *segment, index []indexEntry, _ indexEntry) error {
			// The reader's own read would fail at its open first: call
			// the rebuild its mismatch leads to.
			_, err := l.topics[testTopic].parts[0].reindex(s, index)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			efs, hl := vfs.NewErrorFS(nil), &healthLog{}
			l := openLog(t, dir, Options{FS: efs, IndexIntervalBytes: 64, OnHealth: hl.report, SpaceProbeInterval: time.Hour})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			s, index, path := activeBatches(t, l, dir, 20)
			if len(index) < 3 {
				t.Fatalf("%d index entries; want 3 or more", len(index))
			}
			e := index[2]
			flipByte(16)(t, path, int64(e.pos)) // the base offset's low byte: the batch no longer matches e
			tc.fail(t, l, efs, s, index)
			err := tc.read(t, l, s, index, e)
			if !errors.Is(err, intentlog.ErrStorage) || !errors.Is(err, syscall.EIO) || errors.Is(err, intentlog.ErrCorrupt) {
				t.Fatalf("read of a mismatched active batch whose check fails with EIO: %v; want ErrStorage wrapping EIO, not ErrCorrupt", err)
			}
			if efs.Fired() == 0 {
				t.Fatal("the fault never fired")
			}
			h := l.Health()
			if !errors.Is(h, ErrReadFailing) || !errors.Is(h, syscall.EIO) || errors.Is(h, ErrReadCorrupt) {
				t.Fatalf("Health after the check's read failed: %v; want ErrReadFailing wrapping EIO, not ErrReadCorrupt", h)
			}
			l.files.mu.Lock()
			users := s.users
			l.files.mu.Unlock()
			if users != 0 {
				t.Fatalf("active segment file: %d users after the read; want 0 (acquired and not released)", users)
			}
		})
	}
}

// TestReindexOpenFails: a read of a sealed segment whose index entry does
// not match its batch rebuilds the index from the segment; when the
// segment file cannot be opened for that, the read fails with ErrStorage
// and shows in Health as ErrReadFailing, as any read's I/O error does.
func TestReindexOpenFails(t *testing.T) {
	t.Parallel()
	efs, hl := vfs.NewErrorFS(nil), &healthLog{}
	l := openLog(t, t.TempDir(), Options{FS: efs, SegmentBytes: 300, IndexIntervalBytes: 64, OnHealth: hl.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range 8 {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), 2)
	}
	p := l.topics[testTopic].parts[0]
	p.mu.Lock()
	s := p.segs[0]
	index := s.index
	nsegs := len(p.segs)
	p.mu.Unlock()
	if nsegs < 2 || len(index) == 0 {
		t.Fatalf("%d segments, %d index entries in the first; want a sealed segment with entries", nsegs, len(index))
	}
	// Read once so the file is open and idle in the cache, then close it
	// (its budget taken by other files) and fail its open.
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	_, err = r.Next(context.Background())
	noErr(t, err)
	noErr(t, r.Close())
	l.files.mu.Lock()
	if s.users != 0 || s.elem == nil {
		l.files.mu.Unlock()
		t.Fatalf("sealed segment file: %d users, idle %v; want idle", s.users, s.elem != nil)
	}
	_ = l.files.closeLocked(s)
	l.files.mu.Unlock()
	efs.Inject(vfs.Fault{Ops: vfs.OpOpen, Path: "*.log"})
	if _, err := p.reindex(s, index); !errors.Is(err, intentlog.ErrStorage) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("rebuild of a sealed segment's index that cannot open the segment: %v; want ErrStorage wrapping EIO", err)
	}
	if h := l.Health(); !errors.Is(h, ErrReadFailing) || !errors.Is(h, syscall.EIO) {
		t.Fatalf("Health after the rebuild could not open the segment: %v; want ErrReadFailing wrapping EIO", h)
	}
}

// activeBatches appends n batches of 2 records to partition 0 of the test
// topic of l (in dir), which must stay in one segment, and returns that
// segment, its index and its file's path.
func activeBatches(t *testing.T, l *Log, dir string, n int) (*segment, []indexEntry, string) {
	t.Helper()
	for i := range n {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), 2)
	}
	p := l.topics[testTopic].parts[0]
	p.mu.Lock()
	s, nsegs := p.segs[len(p.segs)-1], len(p.segs)
	index := s.index
	p.mu.Unlock()
	if nsegs != 1 {
		t.Fatalf("%d segments; want one active segment", nsegs)
	}
	return s, index, segmentPath(filepath.Join(dir, testTopic, "0"), 0, logExt)
}
