package embedded

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestCreateTopicAppliesRetention: CreateTopic of an existing topic left
// its stored retention as created, so lowering log.retention (the
// disk-full runbook) and restarting removed nothing from existing tables.
// Now it stores the new retention durably (it holds across a restart
// with no CreateTopic) and applies it at once; a partition count that
// differs still fails and changes nothing.
func TestCreateTopicAppliesRetention(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1024, RetentionCheckInterval: -1, Now: clock.Now}
	ctx := context.Background()
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{}) // kept forever
	for i := range 30 {
		appendBatch(t, l, fmt.Sprintf("old-%02d", i), 1)
	}
	clock.Advance(2 * time.Hour)
	appendBatch(t, l, "new", 1)
	noErr(t, l.Close())

	l = openLog(t, dir, opts)
	if err := l.CreateTopic(ctx, testTopic, 2, intentlog.TopicOptions{Retention: time.Hour}); !errors.Is(err, intentlog.ErrPartitionMismatch) {
		t.Fatalf("CreateTopic with another partition count: %v, want ErrPartitionMismatch", err)
	}
	if m, err := readMeta(l.fs, l.dir+"/"+testTopic); err != nil || m.RetentionNanos != 0 {
		t.Fatalf("meta after a refused CreateTopic: %+v, %v; want retention 0", m, err)
	}
	createTestTopic(t, l, 1, intentlog.TopicOptions{Retention: time.Hour})
	start, end, err := l.Bounds(ctx, testTopic, 0)
	noErr(t, err)
	if start == 0 || end != 31 {
		t.Fatalf("after CreateTopic with retention 1h: bounds [%d, %d); want the 2h old records removed", start, end)
	}
	noErr(t, l.Close())

	// Across a restart, without a CreateTopic: the stored retention is 1h.
	l = openLog(t, dir, opts)
	defer l.Close()
	if m, err := readMeta(l.fs, l.dir+"/"+testTopic); err != nil || time.Duration(m.RetentionNanos) != time.Hour {
		t.Fatalf("meta after reopen: %+v, %v; want retention 1h", m, err)
	}
	for i := range 30 {
		appendBatch(t, l, fmt.Sprintf("newer-%02d", i), 1)
	}
	clock.Advance(2 * time.Hour)
	appendBatch(t, l, "newest", 1)
	l.enforceRetention()
	s2, _, err := l.Bounds(ctx, testTopic, 0)
	noErr(t, err)
	if s2 <= start {
		t.Fatalf("after reopen, retention removed nothing: start %d, was %d", s2, start)
	}

	// Back to forever: nothing more is removed.
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	clock.Advance(24 * time.Hour)
	appendBatch(t, l, "last", 1)
	l.enforceRetention()
	if s3, _, err := l.Bounds(ctx, testTopic, 0); err != nil || s3 != s2 {
		t.Fatalf("retention 0 (forever): start %d, %v; want %d", s3, err, s2)
	}
}

// TestCreateTopicRetentionDiskFull: the disk-full runbook lowers the
// retention and restarts; the new meta file cannot be written then, and
// failing CreateTopic would leave the table unserved and the space taken.
// The retention applies anyway and the meta is stored once it freed space
// (or, if it cannot be, at the next CreateTopic). Another storage error
// fails CreateTopic and changes nothing.
func TestCreateTopicRetentionDiskFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fault     vfs.Fault
		wantErr   bool
		wantMeta  time.Duration // stored retention after CreateTopic
		wantStart bool          // records removed
	}{
		{"full, then freed", vfs.Fault{Ops: vfs.OpOpen | vfs.OpWrite, Path: "#meta.tmp", Err: syscall.ENOSPC, Times: 1}, false, time.Hour, true},
		{"stays full", vfs.Fault{Ops: vfs.OpOpen | vfs.OpWrite, Path: "#meta.tmp", Err: syscall.ENOSPC}, false, 0, true},
		{"I/O error", vfs.Fault{Ops: vfs.OpOpen | vfs.OpWrite, Path: "#meta.tmp", Err: syscall.EIO}, true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{}
			clock.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
			efs := vfs.NewErrorFS(nil)
			ctx := context.Background()
			l := openLog(t, t.TempDir(), Options{FS: efs, SegmentBytes: 1024, RetentionCheckInterval: -1, Now: clock.Now})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for i := range 30 {
				appendBatch(t, l, fmt.Sprintf("old-%02d", i), 1)
			}
			clock.Advance(2 * time.Hour)
			appendBatch(t, l, "new", 1)
			efs.Inject(tc.fault)
			err := l.CreateTopic(ctx, testTopic, 1, intentlog.TopicOptions{Retention: time.Hour})
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, intentlog.ErrStorage)) {
				t.Fatalf("CreateTopic: %v, want error %t (ErrStorage)", err, tc.wantErr)
			}
			efs.Clear()
			if m, err := readMeta(l.fs, l.dir+"/"+testTopic); err != nil || time.Duration(m.RetentionNanos) != tc.wantMeta {
				t.Fatalf("stored meta %+v, %v; want retention %s", m, err, tc.wantMeta)
			}
			if start, _, err := l.Bounds(ctx, testTopic, 0); err != nil || (start > 0) != tc.wantStart {
				t.Fatalf("start %d, %v; want records removed: %t", start, err, tc.wantStart)
			}
			// The next CreateTopic (a start) stores what was not stored.
			createTestTopic(t, l, 1, intentlog.TopicOptions{Retention: time.Hour})
			if m, err := readMeta(l.fs, l.dir+"/"+testTopic); err != nil || time.Duration(m.RetentionNanos) != time.Hour {
				t.Fatalf("stored meta after a CreateTopic on a working disk: %+v, %v; want retention 1h", m, err)
			}
		})
	}
}
