package embedded

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestRetentionCrashLeavesNoGap: a segment a reader is still reading is
// deleted only at the reader's release; the younger segments retention
// removed with it wait for it (they were deleted at once: a crash in that
// window left [seg0, seg6, ...] on disk with seg3 gone, and Open refused
// the gap, ErrCorrupt, "run wail log repair", although nothing was damaged
// and no record a reader still needed was lost).
func TestRetentionCrashLeavesNoGap(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{}
	clock.ns.Store(t0.UnixNano())
	g := newGate()
	mem := vfs.NewMem()
	fsys := &hookFS{FS: mem, hook: func(op vfs.Op, name string, _ int64, _ int) error {
		g.hold(op, name)
		return nil
	}}
	batch := int64(batchHeaderLen + len(appendRecord(nil, 0, retentionRec(0))))
	opts := Options{FS: fsys, SegmentBytes: 3 * batch, RetentionCheckInterval: -1, Now: clock.Now,
		Logger: slog.New(slog.DiscardHandler)}
	l := openLog(t, "/log", opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{Retention: time.Hour})
	appendAt(t, l, 0, 9) // segments 0, 3, 6 (active)

	// A reader is in the middle of reading segment 0 (a consumer catching up).
	first := segmentPath(craftedDir, 0, logExt)
	g.arm(func(op vfs.Op, name string) bool { return op == vfs.OpRead && name == first })
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	go func() { _, _ = r.Next(context.Background()) }()
	g.await(t)

	// Both sealed segments expire; the next roll applies retention and,
	// with the roll after it, the directory is fsync'd.
	clock.Advance(2 * time.Hour)
	appendAt(t, l, 9, 15) // rolls at 9 and 12
	t.Logf("files before the crash: %v", segmentsOn(t, fsys))

	// Power loss (kill -9 would leave the same directory) while the reader
	// still reads segment 0.
	after := mem.Crash()
	close(g.release)
	_ = l.Close()

	opts.FS = after
	l2, err := Open("/log", opts)
	if err != nil {
		t.Fatalf("reopen after a crash during retention: %v", err)
	}
	defer l2.Close()
	s, e, err := l2.Bounds(context.Background(), testTopic, 0)
	if err != nil || s != 0 || e != 15 {
		t.Fatalf("bounds after the crash: [%d, %d), %v; want [0, 15) (segment 0 was still being read)", s, e, err)
	}
}

// removeFailFS fails the first Remove of one file with EIO.
type removeFailFS struct {
	vfs.FS
	name string
	done atomic.Bool
}

func (f *removeFailFS) Remove(name string) error {
	if name == f.name && f.done.CompareAndSwap(false, true) {
		return syscall.EIO
	}
	return f.FS.Remove(name)
}

// TestRetentionRemoveFailsInOrder: when the oldest expired segment cannot
// be deleted (EIO), the younger ones stay too (deleting them would leave
// a gap a crash makes permanent); the next run deletes them all, oldest
// first.
func TestRetentionRemoveFailsInOrder(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{}
	clock.ns.Store(t0.UnixNano())
	fsys := &removeFailFS{FS: vfs.NewMem(), name: segmentPath(craftedDir, 0, logExt)}
	batch := int64(batchHeaderLen + len(appendRecord(nil, 0, retentionRec(0))))
	l := openLog(t, "/log", Options{FS: fsys, SegmentBytes: 3 * batch, RetentionCheckInterval: -1, Now: clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	createTestTopic(t, l, 1, intentlog.TopicOptions{Retention: time.Hour})
	appendAt(t, l, 0, 9) // segments 0, 3, 6 (active)
	clock.Advance(2 * time.Hour)
	appendAt(t, l, 9, 10) // rolls at 9: retention removes 0, 3 and 6
	if got := segmentsOn(t, fsys); !slices.Contains(got, "00000000000000000003.log") {
		t.Fatalf("segment 3 deleted while segment 0 could not be: %v", got)
	}
	appendAt(t, l, 10, 13) // rolls at 12: retention runs again
	for _, f := range segmentsOn(t, fsys) {
		if f < "00000000000000000009" {
			t.Fatalf("expired segment %s still on disk after a second run: %v", f, segmentsOn(t, fsys))
		}
	}
}
