package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// healthLog records what OnHealth was called with.
type healthLog struct {
	mu    sync.Mutex
	calls []error
}

func (h *healthLog) report(err error) {
	h.mu.Lock()
	h.calls = append(h.calls, err)
	h.mu.Unlock()
}

// last returns how many calls there were and the last one's error.
func (h *healthLog) last() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) == 0 {
		return 0, nil
	}
	return len(h.calls), h.calls[len(h.calls)-1]
}

// tryAppend appends one record and returns the error.
func tryAppend(l *Log, key string) (*intentlog.Record, error) {
	r := &intentlog.Record{Key: []byte(key), Value: []byte("value of " + key)}
	return r, l.Append(context.Background(), testTopic, []*intentlog.Record{r})
}

// mustBlockNext checks that a reader at the end gets nothing.
func mustBlockNext(t *testing.T, r intentlog.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if recs, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader after a failed append: %d records, %v; want nothing", len(recs), err)
	}
}

// TestDiskFull: appends on a full disk fail with ErrNoSpace, leave no byte
// behind that a reader or a reopen could see and do not advance the end;
// health says so; once space returns, health clears without an append
// (the probe) and appends go on at the next offset.
func TestDiskFull(t *testing.T) {
	cases := []struct {
		name  string
		fault vfs.Fault
	}{
		{"write", vfs.Fault{Ops: vfs.OpWrite, Err: syscall.ENOSPC}},
		{"short write", vfs.Fault{Ops: vfs.OpWrite, Err: syscall.ENOSPC, Partial: true}},
		{"quota", vfs.Fault{Ops: vfs.OpWrite, Err: syscall.EDQUOT, Partial: true}},
		// The next append rolls a segment: creating it fails.
		{"roll", vfs.Fault{Ops: vfs.OpWrite | vfs.OpOpen, Err: syscall.ENOSPC}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			efs := vfs.NewErrorFS(nil)
			h := &healthLog{}
			opts := Options{FS: efs, OnHealth: h.report, SpaceProbeInterval: 5 * time.Millisecond, SegmentBytes: 600}
			l := openLog(t, dir, opts)
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			want := appendBatch(t, l, "a", 5)
			if tc.name == "roll" {
				want = append(want, appendBatch(t, l, "b", 5)...) // the segment is full now
			}
			_, end0, err := l.Bounds(context.Background(), testTopic, 0)
			noErr(t, err)
			files := segmentFiles(t, dir, 0, logExt)
			size0 := fileSize(t, files[len(files)-1])
			r, err := l.NewReader(testTopic, 0, end0)
			noErr(t, err)
			defer r.Close()

			efs.Inject(tc.fault)
			for i := range 3 {
				_, err := tryAppend(l, fmt.Sprint("lost-", i))
				if !errors.Is(err, intentlog.ErrNoSpace) || !errors.Is(err, intentlog.ErrStorage) || !errors.Is(err, tc.fault.Err) {
					t.Fatalf("append on a full disk: %v; want ErrNoSpace wrapping %v", err, tc.fault.Err)
				}
				// OnHealth hears of it at the first failure, and only then.
				if n, err := h.last(); !errors.Is(err, intentlog.ErrNoSpace) || n != 1 {
					t.Fatalf("after failed append %d: OnHealth last called with %v (%d calls), want ErrNoSpace once", i, err, n)
				}
			}
			if efs.Fired() == 0 {
				t.Fatal("the fault never fired")
			}
			// The space probe runs and fails while the disk is full: the
			// condition stays.
			fired := efs.Fired()
			waitFor(t, "two probes on the full disk", func() bool { return efs.Fired() >= fired+2 || l.Health() == nil })
			if err := l.Health(); !errors.Is(err, intentlog.ErrNoSpace) ||
				!strings.HasPrefix(err.Error(), "1 partition(s) cannot append, first t/0: ") {
				t.Fatalf("Health() = %v, want ErrNoSpace for 1 partition, t/0", err)
			}
			if n, err := h.last(); !errors.Is(err, intentlog.ErrNoSpace) || n != 1 {
				t.Fatalf("OnHealth last called with %v (%d calls), want ErrNoSpace once", err, n)
			}
			if _, end, _ := l.Bounds(context.Background(), testTopic, 0); end != end0 {
				t.Fatalf("end offset %d after failed appends, want %d", end, end0)
			}
			if got := segmentFiles(t, dir, 0, logExt); len(got) != len(files) || fileSize(t, files[len(files)-1]) != size0 {
				t.Fatalf("segments %v (last %d bytes) after failed appends, want %v (%d bytes)", got,
					fileSize(t, got[len(got)-1]), files, size0)
			}
			mustBlockNext(t, r)

			efs.Clear()
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) { // OnHealth follows Health closely
				if n, err := h.last(); err == nil && n > 1 && l.Health() == nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if err := l.Health(); err != nil {
				t.Fatalf("Health() = %v after space returned, want nil", err)
			}
			if n, err := h.last(); err != nil || n != 2 {
				t.Fatalf("OnHealth last called with %v (%d calls), want nil as the second call", err, n)
			}
			more := appendBatch(t, l, "c", 3)
			if more[0].Offset != end0 {
				t.Fatalf("first append after the disk-full period at offset %d, want %d", more[0].Offset, end0)
			}
			recs, err := r.Next(context.Background())
			noErr(t, err)
			sameRecords(t, "reader after space returned", recs, more)
			want = append(want, more...)
			noErr(t, l.Close())
			l = openLog(t, dir, Options{})
			defer l.Close()
			sameRecords(t, "after reopen", readAll(t, l, 0), want)
		})
	}
}

// TestStorageErrorBreaksPartition: a failed fsync (of any kind, ENOSPC
// included) or a write error other than a full disk breaks the partition:
// the append fails with ErrStorage (not ErrNoSpace), later appends fail
// too even once the fault is gone, readers never see the batch, and a
// reopen works again without the failed batch.
func TestStorageErrorBreaksPartition(t *testing.T) {
	cases := []struct {
		name  string
		fault vfs.Fault
	}{
		{"fsync EIO", vfs.Fault{Ops: vfs.OpSync, Path: "*.log", Times: 1}},
		{"fsync ENOSPC", vfs.Fault{Ops: vfs.OpSync, Path: "*.log", Times: 1, Err: syscall.ENOSPC}},
		{"write EIO", vfs.Fault{Ops: vfs.OpWrite, Path: "*.log", Times: 1, Partial: true}},
		{"write ENOSPC, truncate fails", vfs.Fault{Ops: vfs.OpWrite | vfs.OpTruncate, Path: "*.log", Times: 2, Err: syscall.ENOSPC}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			efs := vfs.NewErrorFS(nil)
			h := &healthLog{}
			l := openLog(t, dir, Options{FS: efs, OnHealth: h.report})
			createTestTopic(t, l, 2, intentlog.TopicOptions{})
			want := appendBatch(t, l, "a", 1) // partition 0 or 1
			p := want[0].Partition
			r, err := l.NewReader(testTopic, p, want[0].Offset+1)
			noErr(t, err)
			defer r.Close()
			efs.Inject(tc.fault)
			_, err = tryAppend(l, "a-0")
			if !errors.Is(err, intentlog.ErrStorage) || errors.Is(err, intentlog.ErrNoSpace) {
				t.Fatalf("append: %v; want ErrStorage, not ErrNoSpace", err)
			}
			efs.Clear()
			if _, err := tryAppend(l, "a-0"); !errors.Is(err, intentlog.ErrStorage) {
				t.Fatalf("append after the fault cleared: %v; want ErrStorage (the partition stays broken)", err)
			}
			if err := l.Health(); !errors.Is(err, intentlog.ErrStorage) || errors.Is(err, intentlog.ErrNoSpace) ||
				!strings.HasPrefix(err.Error(), fmt.Sprintf("1 partition(s) broken by a storage error, first t/%d: ", p)) {
				t.Fatalf("Health() = %v; want ErrStorage for 1 partition, t/%d", err, p)
			}
			if _, err := h.last(); !errors.Is(err, intentlog.ErrStorage) {
				t.Fatalf("OnHealth last called with %v", err)
			}
			mustBlockNext(t, r)
			// The other partition still takes appends.
			for i := 0; ; i++ {
				key := fmt.Sprint("other-", i)
				if intentlog.Partition([]byte(key), 2) != p {
					_, err := tryAppend(l, key)
					noErr(t, err)
					break
				}
			}
			_ = l.Close()
			l = openLog(t, dir, Options{})
			defer l.Close()
			if err := l.Health(); err != nil {
				t.Fatalf("Health() after reopen = %v", err)
			}
			more := appendBatch(t, l, "a", 1)
			if more[0].Offset != 1 {
				t.Fatalf("append after reopen at offset %d, want 1 (the failed batch is gone)", more[0].Offset)
			}
			sameRecords(t, "after reopen", readAll(t, l, p), append(want, more...))
		})
	}
}

// TestSpaceProbe: while the disk is full, the probe clears the condition
// only once it could write, fsync and remove its file; a probe that fails
// at any of these leaves the partition reported full.
func TestSpaceProbe(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpOpen, vfs.OpWrite, vfs.OpSync, vfs.OpRemove} {
		t.Run(op.String(), func(t *testing.T) {
			t.Parallel()
			efs := vfs.NewErrorFS(vfs.NewMem())
			h := &healthLog{}
			l := openLog(t, "/log", Options{FS: efs, OnHealth: h.report, SpaceProbeInterval: time.Millisecond})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Path: "*.log", Times: 1, Err: syscall.ENOSPC})
			efs.Inject(vfs.Fault{Ops: op, Path: probeName, Err: syscall.ENOSPC})
			if _, err := tryAppend(l, "k"); !errors.Is(err, intentlog.ErrNoSpace) {
				t.Fatalf("append on a full disk: %v", err)
			}
			fired := efs.Fired()
			waitFor(t, "two failed probes", func() bool { return efs.Fired() >= fired+2 || l.Health() == nil })
			if err := l.Health(); !errors.Is(err, intentlog.ErrNoSpace) {
				t.Fatalf("Health() = %v after probes failing at %s, want ErrNoSpace", err, op)
			}
			efs.Clear()
			waitFor(t, "the probe to clear the condition", func() bool { n, err := h.last(); return n == 2 && err == nil })
			if err := l.Health(); err != nil {
				t.Fatalf("Health() = %v after space returned", err)
			}
		})
	}
}

// TestSpaceProbeKeepsNewerFailure: a partition that fails on a full disk
// again while a probe runs stays reported full when that probe succeeds:
// the probe only vouches for the failures that came before it started (a
// probe of 1 MiB succeeding says nothing of a larger batch that just
// failed), and the next probe takes the new one.
func TestSpaceProbeKeepsNewerFailure(t *testing.T) {
	t.Parallel()
	efs := vfs.NewErrorFS(vfs.NewMem())
	var during func()
	hfs := &hookFS{FS: efs, hook: func(op vfs.Op, name string, _ int64, _ int) error {
		if op == vfs.OpSync && filepath.Base(name) == probeName && during != nil {
			during()
		}
		return nil
	}}
	h := &healthLog{}
	l := openLog(t, "/log", Options{FS: hfs, OnHealth: h.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Path: "*.log", Err: syscall.ENOSPC})
	if _, err := tryAppend(l, "a"); !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v", err)
	}
	// The probe's file is written; before it returns, an append fails on
	// the full disk again.
	during = func() {
		during = nil
		if _, err := tryAppend(l, "b"); !errors.Is(err, intentlog.ErrNoSpace) {
			t.Errorf("append on a full disk during the probe: %v", err)
		}
	}
	l.probeWhileFull()
	if during != nil {
		t.Fatal("the probe did not fsync its file")
	}
	if err := l.Health(); !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("Health() = %v after a probe that started before the last failure, want ErrNoSpace", err)
	}
	// The next probe, started after that failure, clears it.
	efs.Clear()
	l.probeWhileFull()
	if err := l.Health(); err != nil {
		t.Fatalf("Health() = %v after the next probe", err)
	}
	if n, err := h.last(); n != 2 || err != nil {
		t.Fatalf("OnHealth called %d times, last with %v; want full, then healthy", n, err)
	}
	if _, err := tryAppend(l, "c"); err != nil {
		t.Fatalf("append once space returned: %v", err)
	}
}

// TestAppendClearsDiskFull: an append that succeeds once space returns,
// before any space probe ran, clears the full-disk condition: Health is
// nil and OnHealth hears of it.
func TestAppendClearsDiskFull(t *testing.T) {
	t.Parallel()
	efs := vfs.NewErrorFS(nil)
	h := &healthLog{}
	l := openLog(t, t.TempDir(), Options{FS: efs, OnHealth: h.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 2)
	efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Err: syscall.ENOSPC})
	if _, err := tryAppend(l, "lost"); !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v; want ErrNoSpace", err)
	}
	if n, err := h.last(); n != 1 || !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("OnHealth: %d calls, last %v; want one with ErrNoSpace", n, err)
	}
	efs.Clear()
	if _, err := tryAppend(l, "kept"); err != nil {
		t.Fatalf("append once space returned: %v", err)
	}
	if err := l.Health(); err != nil {
		t.Fatalf("Health after an append succeeded again: %v; want nil", err)
	}
	if n, err := h.last(); n != 2 || err != nil {
		t.Fatalf("OnHealth: %d calls, last %v; want a second one with nil", n, err)
	}
}
