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

// readCases are the reads of a partition: a Reader's and OffsetForTime's.
var readCases = []struct {
	name string
	read func(l *Log) error
}{
	{"reader", func(l *Log) error {
		r, err := l.NewReader(testTopic, 0, 0)
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

// failingReads opens a log of several segments whose reads of segment files
// fail with EIO, and fails one read.
func failingReads(t *testing.T, probe time.Duration, read func(*Log) error) (*Log, *vfs.ErrorFS, *healthLog) {
	t.Helper()
	efs, hl := vfs.NewErrorFS(nil), &healthLog{}
	l := openLog(t, t.TempDir(), Options{FS: efs, SegmentBytes: 300, OnHealth: hl.report, SpaceProbeInterval: probe})
	t.Cleanup(func() { _ = l.Close() })
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for range 4 {
		appendBatch(t, l, "a", 5)
	}
	efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log"})
	if err := read(l); !errors.Is(err, intentlog.ErrStorage) {
		t.Fatalf("read with EIO: %v, want ErrStorage", err)
	}
	return l, efs, hl
}

// TestReadFailureInHealth: a read of a partition that fails with an I/O
// error shows in Health (and OnHealth) as ErrReadFailing with its cause,
// as a failed append does, without breaking the partition; a read that
// succeeds again clears it.
func TestReadFailureInHealth(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, efs, hl := failingReads(t, time.Hour, tc.read)
			h := l.Health()
			if !errors.Is(h, ErrReadFailing) || !errors.Is(h, syscall.EIO) || errors.Is(h, intentlog.ErrNoSpace) ||
				!strings.Contains(h.Error(), testTopic+"/0") {
				t.Fatalf("Health after a failed read: %v; want ErrReadFailing naming %s/0 and EIO", h, testTopic)
			}
			n, last := hl.last()
			if n != 1 || !errors.Is(last, ErrReadFailing) {
				t.Fatalf("OnHealth: %d calls, last %v; want one with ErrReadFailing", n, last)
			}
			if _, err := tryAppend(l, "b"); err != nil {
				t.Fatalf("append while reads fail: %v", err)
			}
			if err := tc.read(l); err == nil {
				t.Fatal("second read with EIO succeeded")
			}
			if n, _ := hl.last(); n != 1 {
				t.Fatalf("OnHealth called %d times after a second failed read, want once", n)
			}
			efs.Clear()
			if err := tc.read(l); err != nil {
				t.Fatalf("read once the disk works again: %v", err)
			}
			if h := l.Health(); h != nil {
				t.Fatalf("Health after a read succeeded again: %v", h)
			}
			if n, last := hl.last(); n != 2 || last != nil {
				t.Fatalf("OnHealth: %d calls, last %v; want a second one with nil", n, last)
			}
		})
	}
}

// TestReadFailureProbe: nobody may read the partition again (a subscriber
// gone, a resolver waiting out its backoff), so a probe reads again where
// the read failed every SpaceProbeInterval: it clears Health once the
// disk reads again, and not while it still fails.
func TestReadFailureProbe(t *testing.T) {
	t.Parallel()
	l, efs, _ := failingReads(t, 5*time.Millisecond, readCases[0].read)
	deadline := time.Now().Add(10 * time.Second)
	for fired := efs.Fired(); efs.Fired() < fired+3; {
		if time.Now().After(deadline) {
			t.Fatal("no probe read the failed segment again")
		}
		time.Sleep(time.Millisecond) // the probe reads and fails
	}
	if h := l.Health(); !errors.Is(h, ErrReadFailing) {
		t.Fatalf("Health while the disk still fails reads: %v, want ErrReadFailing", h)
	}
	efs.Clear()
	deadline = time.Now().Add(10 * time.Second)
	for l.Health() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health once the disk reads again, with no read but the probe's: %v", h)
	}
}
