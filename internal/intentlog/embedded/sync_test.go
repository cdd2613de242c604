package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// syncfsFS is a MemFS whose filesystem syncs a test can fail, or crash the
// filesystem right before or right after.
type syncfsFS struct {
	*vfs.MemFS
	syncs  atomic.Int64
	fail   atomic.Bool
	crash  atomic.Int32 // crashBefore or crashAfter: once, at the next sync
	image  *vfs.MemFS   // what the crash left
	imgErr error        // the sync's result when it crashed
}

const (
	crashBefore = 1
	crashAfter  = 2
)

func (f *syncfsFS) OpenFilesystemSync(dir string) (vfs.FilesystemSync, error) {
	h, err := f.MemFS.OpenFilesystemSync(dir)
	if err != nil {
		return nil, err
	}
	return &syncfsHandle{h: h, f: f}, nil
}

type syncfsHandle struct {
	h vfs.FilesystemSync
	f *syncfsFS
}

func (s *syncfsHandle) Sync() error {
	s.f.syncs.Add(1)
	if s.f.fail.Load() {
		return &fsError{"syncfs", syscall.EIO}
	}
	if s.f.crash.CompareAndSwap(crashBefore, 0) {
		s.f.image = s.f.MemFS.Crash()
	}
	err := s.h.Sync()
	if s.f.crash.CompareAndSwap(crashAfter, 0) {
		s.f.image, s.f.imgErr = s.f.MemFS.Crash(), err
	}
	return err
}

func (s *syncfsHandle) Close() error { return s.h.Close() }

type fsError struct {
	op  string
	err error
}

func (e *fsError) Error() string { return e.op + ": " + e.err.Error() }
func (e *fsError) Unwrap() error { return e.err }

// keyOn returns a key of partition p among n.
func keyOn(p, n int32, tag string) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("%s-%d", tag, i); intentlog.Partition([]byte(k), n) == p {
			return k
		}
	}
}

// oneRound arms the log's syncer so that its next round waits until n
// requests are queued, then appends one record to each of parts, each in
// its own call, concurrently: all of them share that round. It returns each
// call's record and error.
func oneRound(t *testing.T, l *Log, nparts int32, parts []int32, tag string) ([]*intentlog.Record, []error) {
	t.Helper()
	var armed atomic.Bool
	armed.Store(true)
	hook := func() {
		for armed.Load() && l.syncer.queued() < len(parts) {
			time.Sleep(50 * time.Microsecond) // a wait, not a timed assertion
		}
		armed.Store(false)
	}
	l.syncer.testHookRound.Store(&hook)
	defer l.syncer.testHookRound.Store(nil)
	recs := make([]*intentlog.Record, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		k := keyOn(p, nparts, fmt.Sprintf("%s-p%d", tag, p))
		recs[i] = &intentlog.Record{Key: []byte(k), Value: []byte("value of " + k)}
		wg.Go(func() { errs[i] = l.Append(context.Background(), testTopic, []*intentlog.Record{recs[i]}) })
	}
	wg.Wait()
	return recs, errs
}

// TestSyncRoundFailure: when the syncfs of a round fails, every append of
// that round fails with ErrStorage, each partition in the round breaks,
// readers never see the batches and, after a power loss, a reopen finds
// the log without them. A failed syncfs cannot say which file lost pages
// and reports the error once, so every later append fails too, also on a
// partition that was not in the round.
func TestSyncRoundFailure(t *testing.T) {
	const nparts = 3
	fsys := &syncfsFS{MemFS: vfs.NewMem()}
	opts := Options{FS: fsys, SyncFilesystem: true}
	l := openLog(t, "/log", opts)
	createTestTopic(t, l, nparts, intentlog.TopicOptions{})
	before, errs := oneRound(t, l, nparts, []int32{0, 1, 2}, "ok")
	for i, err := range errs {
		noErr(t, err)
		if before[i].Offset != 0 {
			t.Fatalf("first record of partition %d at offset %d", before[i].Partition, before[i].Offset)
		}
	}

	fsys.fail.Store(true)
	syncs := fsys.syncs.Load()
	_, errs = oneRound(t, l, nparts, []int32{0, 1}, "lost")
	fsys.fail.Store(false)
	if n := fsys.syncs.Load() - syncs; n != 1 {
		t.Fatalf("%d syncfs calls for the failed round, want 1", n)
	}
	for i, err := range errs {
		if !errors.Is(err, intentlog.ErrStorage) || errors.Is(err, intentlog.ErrNoSpace) {
			t.Errorf("append %d of the failed round: %v; want ErrStorage", i, err)
		}
	}
	if err := l.Health(); !errors.Is(err, intentlog.ErrStorage) ||
		!strings.HasPrefix(err.Error(), "2 partition(s) broken by a storage error") {
		t.Errorf("Health() = %v; want partitions 0 and 1 broken", err)
	}
	for p := range int32(2) {
		if _, err := tryAppend(l, keyOn(p, nparts, "after")); !errors.Is(err, intentlog.ErrStorage) {
			t.Errorf("partition %d after the failed round: %v; want ErrStorage (broken)", p, err)
		}
		if _, end, _ := l.Bounds(context.Background(), testTopic, p); end != 1 {
			t.Errorf("partition %d: end %d after the failed round, want 1", p, end)
		}
	}
	if _, err := tryAppend(l, keyOn(2, nparts, "outside")); !errors.Is(err, intentlog.ErrStorage) {
		t.Errorf("partition 2, not in the round, after a failed syncfs: %v; want ErrStorage", err)
	}
	_ = l.Close()

	opts.FS = &syncfsFS{MemFS: fsys.MemFS.Crash()} // power loss: only what a sync covered
	l = openLog(t, "/log", opts)
	defer l.Close()
	for p := range int32(nparts) {
		got := readAll(t, l, p)
		if len(got) != 1 || string(got[0].Key) != string(before[p].Key) {
			t.Errorf("partition %d after reopen: %d records, first %q; want only %q", p, len(got), firstKey(got), before[p].Key)
		}
	}
}

// TestSyncFilesystemUnsupported: on an FS that cannot sync a filesystem,
// SyncFilesystem falls back to an fsync per file, and says so.
func TestSyncFilesystemUnsupported(t *testing.T) {
	efs := vfs.NewErrorFS(nil)
	var logs logBuffer
	l := openLog(t, t.TempDir(), Options{FS: efs, SyncFilesystem: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer l.Close()
	if l.syncer != nil {
		t.Fatal("a syncer runs on an FS without filesystem syncs")
	}
	if !strings.Contains(logs.String(), "SyncFilesystem is not supported here") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	efs.Inject(vfs.Fault{Ops: vfs.OpSync, Path: "*" + logExt, Times: 1})
	if _, err := tryAppend(l, "k"); !errors.Is(err, intentlog.ErrStorage) {
		t.Fatalf("append with a failing fsync: %v; want ErrStorage (the file was fsync'd)", err)
	}
}

func firstKey(recs []intentlog.Record) string {
	if len(recs) == 0 {
		return ""
	}
	return string(recs[0].Key)
}

// TestSyncRoundCrash: one syncfs makes the batches of every partition in
// the round durable. A power loss right after it (before any append of the
// round is acknowledged) keeps every batch of the round; one right before
// it loses them all, and none of their appends is acknowledged.
func TestSyncRoundCrash(t *testing.T) {
	const nparts = 4
	for _, tc := range []struct {
		name  string
		crash int32
	}{{"after the sync", crashAfter}, {"before the sync", crashBefore}} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := &syncfsFS{MemFS: vfs.NewMem()}
			l := openLog(t, "/log", Options{FS: fsys, SyncFilesystem: true})
			createTestTopic(t, l, nparts, intentlog.TopicOptions{})
			parts := []int32{0, 1, 2, 3}
			syncs := fsys.syncs.Load()
			fsys.crash.Store(tc.crash)
			recs, errs := oneRound(t, l, nparts, parts, "r")
			if n := fsys.syncs.Load() - syncs; n != 1 {
				t.Fatalf("%d filesystem syncs for one round of %d partitions, want 1", n, nparts)
			}
			if fsys.image == nil {
				t.Fatal("no crash happened")
			}
			_ = l.Close()
			l = openLog(t, "/log", Options{FS: &syncfsFS{MemFS: fsys.image}, SyncFilesystem: true})
			defer l.Close()
			for i, p := range parts {
				got := readAll(t, l, p)
				switch {
				case tc.crash == crashAfter && (len(got) != 1 || string(got[0].Key) != string(recs[i].Key)):
					t.Errorf("partition %d after a crash after the sync: %d records (%q); want the round's %q",
						p, len(got), firstKey(got), recs[i].Key)
				case tc.crash == crashBefore && len(got) != 0:
					t.Errorf("partition %d after a crash before the sync: %d records; want none", p, len(got))
				case tc.crash == crashBefore && errs[i] == nil:
					t.Errorf("partition %d: append acknowledged although its sync never happened", p)
				}
			}
		})
	}
}
