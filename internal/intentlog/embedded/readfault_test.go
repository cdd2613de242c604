package embedded

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestReadIOErrorIsStorage: a read that fails with an I/O error (from a
// sealed or the active segment, by a Reader or OffsetForTime) returns an
// error wrapping intentlog.ErrStorage and the cause, not ErrCorrupt: a
// caller tells a failing disk from damaged bytes or a bad argument.
func TestReadIOErrorIsStorage(t *testing.T) {
	cases := []struct {
		name string
		read func(l *Log) error
	}{
		{"reader sealed segment", func(l *Log) error {
			r, err := l.NewReader(testTopic, 0, 0)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = r.Next(context.Background())
			return err
		}},
		{"reader active segment", func(l *Log) error {
			_, end, err := l.Bounds(context.Background(), testTopic, 0)
			if err != nil {
				return err
			}
			r, err := l.NewReader(testTopic, 0, end-1)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = r.Next(context.Background())
			return err
		}},
		{"offset for time", func(l *Log) error {
			_, err := l.OffsetForTime(context.Background(), testTopic, 0, time.Unix(0, 0))
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			efs := vfs.NewErrorFS(nil)
			l := openLog(t, t.TempDir(), Options{FS: efs, SegmentBytes: 300})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for range 4 {
				appendBatch(t, l, "a", 5) // several segments
			}
			if n := len(segmentFiles(t, l.dir, 0, logExt)); n < 2 {
				t.Fatalf("%d segment(s), want several", n)
			}
			efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log"})
			err := tc.read(l)
			if efs.Fired() == 0 {
				t.Fatal("the fault never fired")
			}
			if !errors.Is(err, intentlog.ErrStorage) || !errors.Is(err, syscall.EIO) ||
				errors.Is(err, intentlog.ErrCorrupt) || errors.Is(err, intentlog.ErrNoSpace) {
				t.Fatalf("read with EIO: %v; want ErrStorage wrapping EIO (not ErrCorrupt, not ErrNoSpace)", err)
			}
			efs.Clear()
			if err := tc.read(l); err != nil {
				t.Fatalf("read once the disk works again: %v", err)
			}
		})
	}
}

// TestOpenIOErrorIsStorage: Open failing on an I/O error, whatever file it
// was reading, returns an error wrapping ErrStorage and the cause.
func TestOpenIOErrorIsStorage(t *testing.T) {
	faults := []vfs.Fault{
		{Ops: vfs.OpRead, Path: "*.log"},
		{Ops: vfs.OpOpen, Path: "*.log"},
		{Ops: vfs.OpRead, Path: "meta"},
		{Ops: vfs.OpSize, Path: "meta"},
		{Ops: vfs.OpRead, Path: "g"},
		{Ops: vfs.OpReadDir},
		{Ops: vfs.OpSync, Path: "*.log"},
	}
	for _, f := range faults {
		t.Run(f.Ops.String()+" "+f.Path, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{SegmentBytes: 300})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for range 4 {
				appendBatch(t, l, "a", 5)
			}
			noErr(t, l.Commit(context.Background(), "g", testTopic, map[int32]int64{0: 3}))
			noErr(t, l.Close())
			efs := vfs.NewErrorFS(nil)
			efs.Inject(f)
			l, err := Open(dir, Options{FS: efs, Logger: testLogger(t)})
			if err == nil {
				_ = l.Close()
			}
			if efs.Fired() == 0 {
				t.Fatal("the fault never fired")
			}
			if !errors.Is(err, intentlog.ErrStorage) || !errors.Is(err, syscall.EIO) || errors.Is(err, intentlog.ErrCorrupt) {
				t.Fatalf("Open with EIO: %v; want ErrStorage wrapping EIO", err)
			}
			// It stops the start: it says what to run.
			for _, want := range []string{"dmesg", "smartctl -a", "restore " + dir + " from a backup"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("Open with EIO: %v; want it to say what to run (%q)", err, want)
				}
			}
		})
	}
}

// TestDeleteTopicIOErrorIsStorage: DeleteTopic failing on a file operation
// returns an error wrapping ErrStorage and the cause, and a retry once the
// disk works deletes the topic for good (a reopen does not bring it back).
func TestDeleteTopicIOErrorIsStorage(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpRename, vfs.OpSyncDir, vfs.OpReadDir, vfs.OpRemove} {
		t.Run(op.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			efs := vfs.NewErrorFS(nil)
			l := openLog(t, dir, Options{FS: efs})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			appendBatch(t, l, "a", 3)
			efs.Inject(vfs.Fault{Ops: op})
			err := l.DeleteTopic(context.Background(), testTopic)
			if efs.Fired() == 0 {
				t.Fatal("the fault never fired")
			}
			if !errors.Is(err, intentlog.ErrStorage) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("DeleteTopic with EIO: %v; want ErrStorage wrapping EIO", err)
			}
			efs.Clear()
			noErr(t, l.DeleteTopic(context.Background(), testTopic))
			noErr(t, l.Close())
			l = openLog(t, dir, Options{})
			defer l.Close()
			if _, err := l.Partitions(context.Background(), testTopic); !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("Partitions after the deletion and a reopen: %v; want ErrUnknownTopic", err)
			}
		})
	}
}

// TestOpenPermissionErrorSaysWhatToRun: Open refused by the file system's
// permissions (a data dir owned by another user, a file made by root) or
// on a file system mounted read-only says so and what to run, not to check
// the disk and restore the log from a backup: nothing is damaged, and a
// restore would not help.
func TestOpenPermissionErrorSaysWhatToRun(t *testing.T) {
	for _, tc := range []struct {
		err       error
		want, not []string
	}{
		{syscall.EACCES, []string{"permission denied", "chown", "the user wail runs as"}, []string{"restore", "smartctl"}},
		{syscall.EPERM, []string{"operation not permitted", "chown", "the user wail runs as"}, []string{"restore", "smartctl"}},
		{syscall.EROFS, []string{"read-only file system", "mount", "dmesg"}, []string{"restore"}},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			appendBatch(t, l, "a", 5)
			noErr(t, l.Close())
			efs := vfs.NewErrorFS(nil)
			efs.Inject(vfs.Fault{Ops: vfs.OpLock, Err: tc.err})
			l, err := Open(dir, Options{FS: efs, Logger: testLogger(t)})
			if err == nil {
				_ = l.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Open: %v; want it to wrap %v", err, tc.err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open: %v; want it to say %q", err, want)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(err.Error(), not) {
					t.Errorf("Open: %v; it says %q, which does not help here", err, not)
				}
			}
		})
	}
}

// TestOpenLockedSaysWhatToRun: opening a log another process (a running
// wail, a `wail log repair`) holds says so and what to do, in words an
// operator acts on (not the package's own "Log").
func TestOpenLockedSaysWhatToRun(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	defer l.Close()
	second, err := Open(dir, Options{Logger: testLogger(t)})
	if err == nil {
		_ = second.Close()
		t.Fatal("a second Open of a held log succeeded")
	}
	for _, want := range []string{"another wail process", "stop it", "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a held log: %v; want it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "or Log") {
		t.Errorf("Open of a held log: %v; it names the package's type", err)
	}
}
