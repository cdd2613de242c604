package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestDeleteWakesReadersAndAppenders: readers blocked at the end of a
// deleted topic's partitions and appends racing the deletion fail with
// ErrUnknownTopic (not ErrClosed: the log is still open), and a commit
// that raced it cannot put offsets into a topic created again.
func TestDeleteWakesReadersAndAppenders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{NoSync: true})
	defer l.Close()
	ctx := context.Background()
	if err := l.CreateTopic(ctx, "t", 2, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	rd, err := l.NewReader("t", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	readErr := make(chan error, 1)
	go func() { _, err := rd.Next(ctx); readErr <- err }()
	var appends sync.WaitGroup
	appendErrs := make(chan error, 64)
	stop := make(chan struct{})
	for range 4 {
		appends.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := l.Append(ctx, "t", []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
					appendErrs <- err
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := l.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	appends.Wait()
	close(appendErrs)
	for err := range appendErrs {
		if !errors.Is(err, intentlog.ErrUnknownTopic) {
			t.Errorf("an append racing the deletion failed with %v, want ErrUnknownTopic", err)
		}
	}
	select {
	case err := <-readErr:
		// The reader may have read records appended before the deletion.
		if err != nil && !errors.Is(err, intentlog.ErrUnknownTopic) {
			t.Errorf("blocked reader: %v, want ErrUnknownTopic", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reader blocked on a deleted topic did not wake")
	}
	if _, err := rd.Next(ctx); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("reader of a deleted topic: %v, want ErrUnknownTopic", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "#lock" {
			t.Errorf("left behind in the log directory: %s", e.Name())
		}
	}
}

// TestDeleteInterruptedByCrash: a deleted topic's directory that a crash
// left (renamed, not yet removed) is never loaded, and Open removes it.
func TestDeleteInterruptedByCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	if err := l.CreateTopic(context.Background(), "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	tomb := filepath.Join(dir, deletedPrefix+"t-1")
	if err := os.Rename(filepath.Join(dir, "t"), tomb); err != nil {
		t.Fatal(err)
	}
	var logs logbuf.Buffer
	l = openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer l.Close()
	if strings.Contains(logs.String(), "cannot remove") {
		t.Errorf("Open removed the deleted topic's directory and warned that it could not:\n%s", logs.String())
	}
	if _, err := l.Partitions(context.Background(), "t"); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("a topic whose deletion was interrupted: %v, want ErrUnknownTopic", err)
	}
	if _, err := os.Stat(tomb); !os.IsNotExist(err) {
		t.Errorf("Open left the deleted topic's directory: %v", err)
	}
}

// TestDeleteRemovesTheTopic: a deletion that returns leaves nothing of
// the topic on disk (no directory, no renamed tombstone), with the
// directory sync (the default) as without it.
func TestDeleteRemovesTheTopic(t *testing.T) {
	t.Parallel()
	for _, noSync := range []bool{false, true} {
		dir := t.TempDir()
		l := openLog(t, dir, Options{NoSync: noSync})
		ctx := context.Background()
		if err := l.CreateTopic(ctx, "t", 2, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() == "t" || strings.HasPrefix(e.Name(), deletedPrefix) {
				t.Errorf("NoSync %v: %s left in the log's directory after DeleteTopic returned", noSync, e.Name())
			}
		}
		l.Close()
	}
}

// TestReapAfterRecreate: a segment retention removed while a reader held
// it, whose topic is then deleted and created again, is not deleted (by
// that reader's release) from the new topic's directory, where a segment
// of the same base holds the new topic's records.
func TestReapAfterRecreate(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{}
	clock.ns.Store(t0.UnixNano())
	g := newGate()
	topts := intentlog.TopicOptions{Retention: time.Hour}
	l, _, fsys := retentionLog(t, clock, func(op vfs.Op, name string, _ int64, _ int) error {
		g.hold(op, name)
		return nil
	}, topts)
	appendAt(t, l, 0, 7)
	first := segmentPath(craftedDir, 0, logExt)
	g.arm(func(op vfs.Op, name string) bool { return op == vfs.OpRead && name == first })
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer r.Close()
	done := make(chan error, 1)
	go func() { _, err := r.Next(context.Background()); done <- err }()
	g.await(t)
	clock.Advance(2 * time.Hour)
	l.enforceRetention() // the held segment is dead, its files wait for the reader
	ctx := context.Background()
	noErr(t, l.DeleteTopic(ctx, testTopic))
	createTestTopic(t, l, 1, topts)
	appendAt(t, l, 0, 1) // the new topic's first segment: the same path
	close(g.release)
	<-done
	if _, err := fsys.OpenFile(first, os.O_RDONLY, 0); err != nil {
		t.Fatalf("the old topic's reader deleted the new topic's segment: %v", err)
	}
	if got := readAll(t, l, 0); len(got) != 1 || string(got[0].Key) != "key-000" {
		t.Fatalf("new topic holds %d records, want key-000", len(got))
	}
}

// TestDeleteClearsHealth: the deletion of a topic whose partition was out
// of space tells OnHealth that the log takes appends again (dropping a
// table is how space is freed): it was told only of the next change, and
// the server's health stayed "disk full" until then.
func TestDeleteClearsHealth(t *testing.T) {
	t.Parallel()
	efs := vfs.NewErrorFS(vfs.NewMem())
	h := &healthLog{}
	l := openLog(t, "/log", Options{FS: efs, OnHealth: h.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	ctx := context.Background()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	noErr(t, l.CreateTopic(ctx, "u", 1, intentlog.TopicOptions{}))
	efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Path: "/log/t/0/*.log", Err: syscall.ENOSPC})
	if _, err := tryAppend(l, "k"); !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", err)
	}
	if n, err := h.last(); n != 1 || !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("OnHealth last called with %v (%d calls), want ErrNoSpace", err, n)
	}
	noErr(t, l.DeleteTopic(ctx, testTopic))
	noErr(t, l.Health())
	if n, err := h.last(); n != 2 || err != nil {
		t.Fatalf("after the deletion: OnHealth last called with %v (%d calls), want nil", err, n)
	}
}

// TestCommittedAfterRecreate: Committed that found a topic before its
// deletion and reads its offsets after it fails with ErrUnknownTopic: it
// answered the deleted topic's offsets (cached), which a group would then
// read the topic created again from, skipping its records below them.
func TestCommittedAfterRecreate(t *testing.T) {
	t.Parallel()
	l := openLog(t, "/log", Options{FS: vfs.NewMem()})
	defer l.Close()
	ctx := context.Background()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "r", 5)
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{0: 5}))
	l.testHookCommitted = func(string) {
		l.testHookCommitted = nil
		noErr(t, l.DeleteTopic(ctx, testTopic))
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
	}
	offs, err := l.Committed(ctx, "g", testTopic)
	if !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Fatalf("Committed across the deletion: %v, %v; want ErrUnknownTopic", offs, err)
	}
	if offs, err := l.Committed(ctx, "g", testTopic); err != nil || len(offs) != 0 {
		t.Fatalf("Committed of the new topic: %v, %v; want none", offs, err)
	}
}

// TestCrashAfterRecreate: after a crash, a topic deleted and created again
// holds the new topic's records and offsets only. (MemFS kept directory
// entries by path, so the old offsets directory's entries came back in the
// new one, which a disk does not do.)
func TestCrashAfterRecreate(t *testing.T) {
	t.Parallel()
	fsys := vfs.NewMem()
	l := openLog(t, "/log", Options{FS: fsys, SegmentBytes: 200})
	ctx := context.Background()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range 10 {
		appendBatch(t, l, fmt.Sprint("old", i), 1)
	}
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{0: 7}))
	noErr(t, l.DeleteTopic(ctx, testTopic))
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	want := appendBatch(t, l, "new", 2)
	l = openLog(t, "/log", Options{FS: fsys.Crash()})
	defer l.Close()
	sameRecords(t, "after the crash", readAll(t, l, 0), want)
	if offs, err := l.Committed(ctx, "g", testTopic); err != nil || len(offs) != 0 {
		t.Fatalf("the new topic's committed offsets after the crash: %v, %v; want none", offs, err)
	}
	if w := l.Warnings(); len(w) != 0 {
		t.Fatalf("warnings: %q", w)
	}
}

// TestDeleteAgainRemovesLeftovers: a deletion that failed after renaming
// the topic's directory away (its removal or the directory sync failed)
// leaves the renamed directory, and the deletion tried again removes it:
// it returned nil at once (the topic gone), and a dropped table's bytes
// stayed on disk until a restart.
func TestDeleteAgainRemovesLeftovers(t *testing.T) {
	t.Parallel()
	for _, op := range []vfs.Op{vfs.OpRemove, vfs.OpSyncDir} {
		t.Run(op.String(), func(t *testing.T) {
			t.Parallel()
			efs := vfs.NewErrorFS(vfs.NewMem())
			l := openLog(t, "/log", Options{FS: efs})
			defer l.Close()
			ctx := context.Background()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			noErr(t, l.CreateTopic(ctx, "t-1", 1, intentlog.TopicOptions{}))
			appendBatch(t, l, "a", 3)
			efs.Inject(vfs.Fault{Ops: op, Path: "/log", Times: 1})
			efs.Inject(vfs.Fault{Ops: op, Path: "/log/#deleted-*", Times: 1})
			if err := l.DeleteTopic(ctx, testTopic); err == nil {
				t.Fatal("DeleteTopic with a failing disk: nil error")
			}
			efs.Clear()
			noErr(t, l.DeleteTopic(ctx, testTopic))
			ents, err := efs.ReadDir("/log")
			noErr(t, err)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), deletedPrefix) {
					t.Errorf("left in the log directory after DeleteTopic returned: %s", e.Name())
				}
			}
			if _, err := l.Partitions(ctx, "t-1"); err != nil {
				t.Errorf("another topic: %v", err)
			}
		})
	}
}

// removeGateFS holds the first Remove of path until release is closed.
type removeGateFS struct {
	vfs.FS
	path    string
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *removeGateFS) Remove(name string) error {
	if name == g.path {
		g.once.Do(func() {
			close(g.entered)
			<-g.release
		})
	}
	return g.FS.Remove(name)
}

// TestReapDuringDelete: a retention run deleting a segment's file when the
// topic is deleted finishes before the directory is renamed away, so that
// it cannot delete the segment of that path of a topic created again.
func TestReapDuringDelete(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{}
	clock.ns.Store(t0.UnixNano())
	first := segmentPath(craftedDir, 0, logExt)
	fsys := &removeGateFS{FS: vfs.NewMem(), path: first, entered: make(chan struct{}), release: make(chan struct{})}
	batch := int64(batchHeaderLen + len(appendRecord(nil, 0, retentionRec(0))))
	l := openLog(t, "/log", Options{FS: fsys, SegmentBytes: 3 * batch, RetentionCheckInterval: -1, Now: clock.Now})
	defer l.Close()
	topts := intentlog.TopicOptions{Retention: time.Hour}
	createTestTopic(t, l, 1, topts)
	appendAt(t, l, 0, 7)
	clock.Advance(2 * time.Hour)
	retained := make(chan struct{})
	go func() { l.enforceRetention(); close(retained) }()
	<-fsys.entered // the run is deleting the first segment's file
	recreated := make(chan struct{})
	go func() {
		defer close(recreated)
		noErr(t, l.DeleteTopic(context.Background(), testTopic))
		createTestTopic(t, l, 1, topts)
		appendAt(t, l, 0, 1)
	}()
	select {
	case <-recreated: // the deletion did not wait for the run
	case <-time.After(time.Second): // it waits (the fix): let the run go on
	}
	close(fsys.release)
	<-retained
	<-recreated
	if _, err := fsys.OpenFile(first, os.O_RDONLY, 0); err != nil {
		t.Fatalf("the old topic's retention deleted the new topic's segment: %v", err)
	}
	if got := readAll(t, l, 0); len(got) != 1 || string(got[0].Key) != "key-000" {
		t.Fatalf("new topic holds %d records, want key-000", len(got))
	}
}

// TestPartitionOpsAcrossDeleteOrClose: an operation that found its
// partition just before the topic was deleted fails with ErrUnknownTopic
// (as it would a moment later), never ErrClosed, which callers take for
// the log's own Close; one that found it just before Close fails with
// ErrClosed.
func TestPartitionOpsAcrossDeleteOrClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := map[string]func(l *Log) error{
		"bounds": func(l *Log) error { _, _, err := l.Bounds(ctx, testTopic, 0); return err },
		"lost offsets": func(l *Log) error {
			_, err := l.Lost(ctx, testTopic, 0)
			return err
		},
		"offset for time": func(l *Log) error { _, err := l.OffsetForTime(ctx, testTopic, 0, time.Now()); return err },
		"new reader": func(l *Log) error {
			r, err := l.NewReader(testTopic, 0, 0)
			if err == nil {
				_, err = r.Next(ctx)
			}
			return err
		},
	}
	for name, op := range ops {
		for _, closing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/close=%v", name, closing), func(t *testing.T) {
				t.Parallel()
				l := openLog(t, "/log", Options{FS: vfs.NewMem()})
				defer l.Close()
				createTestTopic(t, l, 1, intentlog.TopicOptions{})
				appendBatch(t, l, "a", 1)
				var once sync.Once
				l.testHookPartition = func(got string) {
					if got != name {
						t.Errorf("hook called for %q", got)
					}
					once.Do(func() {
						if closing {
							noErr(t, l.Close())
						} else {
							noErr(t, l.DeleteTopic(ctx, testTopic))
						}
					})
				}
				err := op(l)
				want, notWant := intentlog.ErrUnknownTopic, intentlog.ErrClosed
				if closing {
					want, notWant = notWant, want
				}
				if !errors.Is(err, want) || errors.Is(err, notWant) {
					t.Fatalf("%s across the %s: %v, want %v", name, map[bool]string{false: "deletion", true: "close"}[closing], err, want)
				}
			})
		}
	}
}
