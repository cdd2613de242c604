package embedded

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestCommittedFailureInHealth: a read of a group's committed offsets that
// fails with an I/O error shows in Health as ErrReadFailing naming the
// topic, the group and the file, as a failed read of a partition does (the
// group's resolver or members cannot start from it); a Committed that
// reads again, a Commit that replaces the file, or the probe clears it.
func TestCommittedFailureInHealth(t *testing.T) {
	cases := []struct {
		name  string
		probe time.Duration
		clear func(t *testing.T, l *Log)
	}{
		{"committed again", time.Hour, func(t *testing.T, l *Log) {
			if _, err := l.Committed(context.Background(), "g1", testTopic); err != nil {
				t.Fatalf("Committed once the disk reads again: %v", err)
			}
		}},
		{"commit", time.Hour, func(t *testing.T, l *Log) {
			noErr(t, l.Commit(context.Background(), "g1", testTopic, map[int32]int64{0: 1}))
		}},
		{"probe", 5 * time.Millisecond, func(t *testing.T, l *Log) {
			deadline := time.Now().Add(10 * time.Second)
			for l.Health() != nil && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			efs, hl := vfs.NewErrorFS(nil), &healthLog{}
			dir := t.TempDir()
			l := openLog(t, dir, Options{FS: efs, OnHealth: hl.report, SpaceProbeInterval: tc.probe})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			appendBatch(t, l, "a", 2)
			efs.Inject(vfs.Fault{Ops: vfs.OpOpen | vfs.OpRead, Path: "g1"})
			if _, err := l.Committed(context.Background(), "g1", testTopic); !errors.Is(err, intentlog.ErrStorage) {
				t.Fatalf("Committed with EIO: %v, want ErrStorage", err)
			}
			h := l.Health()
			file := filepath.Join(dir, testTopic, offsetsDir, "g1")
			if !errors.Is(h, ErrReadFailing) || !errors.Is(h, syscall.EIO) || !strings.Contains(h.Error(), file) ||
				!strings.Contains(h.Error(), testTopic+" group g1") {
				t.Fatalf("Health after a failed Committed: %v; want ErrReadFailing naming %s group g1 and %s", h, testTopic, file)
			}
			if n, last := hl.last(); n != 1 || !errors.Is(last, ErrReadFailing) {
				t.Fatalf("OnHealth: %d calls, last %v; want one with ErrReadFailing", n, last)
			}
			efs.Clear()
			tc.clear(t, l)
			if h := l.Health(); h != nil {
				t.Fatalf("Health once the offsets read again: %v", h)
			}
			if n, last := hl.last(); n != 2 || last != nil {
				t.Fatalf("OnHealth: %d calls, last %v; want a second one with nil", n, last)
			}
		})
	}
}

// TestCommitReadFailureInHealth: a Commit that cannot read the group's
// offsets file (to merge with them) fails, and shows in Health as a failed
// Committed does; a read that works clears it.
func TestCommitReadFailureInHealth(t *testing.T) {
	efs := vfs.NewErrorFS(nil)
	l := openLog(t, t.TempDir(), Options{FS: efs, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 2)
	efs.Inject(vfs.Fault{Ops: vfs.OpOpen | vfs.OpRead, Path: "g1"})
	if err := l.Commit(context.Background(), "g1", testTopic, map[int32]int64{0: 1}); !errors.Is(err, intentlog.ErrStorage) {
		t.Fatalf("Commit with EIO reading the offsets: %v, want ErrStorage", err)
	}
	if h := l.Health(); !errors.Is(h, ErrReadFailing) || !strings.Contains(h.Error(), testTopic+" group g1") {
		t.Fatalf("Health after a failed Commit: %v; want ErrReadFailing naming %s group g1", h, testTopic)
	}
	efs.Clear()
	if _, err := l.Committed(context.Background(), "g1", testTopic); err != nil {
		t.Fatalf("Committed once the disk reads again: %v", err)
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health once the offsets read again: %v", h)
	}
}
