package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestFailedRollLeavesNoOverlap: a roll whose directory fsync fails on a
// full disk removes the segment it created, so that the retry can create
// it again. If that remove fails too (or is not durable), the file named
// after the next offset stays. The next batch must then not go into the
// old segment although it would fit: it would take the offset that file
// is named after, and once the file's entry is durable (the next roll's
// directory fsync) the log would overlap it and Open would refuse to
// start. Every record acknowledged must be there after a reopen and
// after a power loss.
func TestFailedRollLeavesNoOverlap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults []vfs.Fault
	}{
		{"remove fails", []vfs.Fault{
			{Ops: vfs.OpSyncDir, Path: "/log/t/0", Times: 1, Err: syscall.ENOSPC},
			{Ops: vfs.OpRemove, Path: "*.log", Times: 1},
		}},
		{"remove works", []vfs.Fault{
			{Ops: vfs.OpSyncDir, Path: "/log/t/0", Times: 1, Err: syscall.ENOSPC},
		}},
	} {
		for _, crash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crash=%v", tc.name, crash), func(t *testing.T) {
				mem := vfs.NewMem()
				efs := vfs.NewErrorFS(mem)
				l := openLog(t, "/log", Options{FS: efs, SegmentBytes: 800})
				createTestTopic(t, l, 1, intentlog.TopicOptions{})
				var want []intentlog.Record
				appendValue := func(key string, n int) error {
					r := &intentlog.Record{Key: []byte(key), Value: bytes.Repeat([]byte{'v'}, n)}
					err := l.Append(context.Background(), testTopic, []*intentlog.Record{r})
					if err == nil {
						want = append(want, *r)
					}
					return err
				}
				noErr(t, appendValue("big-0", 300))
				noErr(t, appendValue("big-1", 300))
				for _, f := range tc.faults {
					efs.Inject(f)
				}
				// Does not fit: the roll fails on the full disk.
				if err := appendValue("big-2", 300); !errors.Is(err, intentlog.ErrNoSpace) {
					t.Fatalf("append with a failing roll: %v, want ErrNoSpace", err)
				}
				efs.Clear()
				// Fits in the old segment; it may fail (a storage error),
				// never overlap.
				if err := appendValue("small", 10); err != nil && !errors.Is(err, intentlog.ErrStorage) {
					t.Fatalf("append after the failed roll: %v", err)
				}
				_ = appendValue("big-3", 300) // a roll, its directory fsync works
				_ = l.Close()
				if crash {
					mem = mem.Crash()
				}
				l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer l.Close()
				sameRecords(t, "after reopen", readAll(t, l, 0), want)
			})
		}
	}
}

// TestOverlappingSegmentsRefused: a segment that ends past the start of
// the next one (a failed roll's leftover before the roll retried, or a
// file copied in) is refused with a message that says so, and a #lost
// range around the offsets does not excuse it: an overlap is no gap, and
// readers would skip records of the first segment.
func TestOverlappingSegmentsRefused(t *testing.T) {
	for _, withLost := range []bool{false, true} {
		t.Run(fmt.Sprint("lost=", withLost), func(t *testing.T) {
			mem := vfs.NewMem()
			l := openLog(t, "/log", Options{FS: mem})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for _, tag := range []string{"a", "b", "c"} {
				appendBatch(t, l, tag, 1)
			}
			noErr(t, l.Close())
			pdir := filepath.Join("/log", testTopic, "0")
			f, err := mem.OpenFile(segmentPath(pdir, 2, logExt), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			noErr(t, err)
			noErr(t, f.Close())
			if withLost {
				noErr(t, writeLost(mem, pdir, lostRanges{{Topic: testTopic, From: 1, To: 5}}))
			}
			l, err = Open("/log", Options{FS: mem, Logger: testLogger(t)})
			if err == nil {
				_ = l.Close()
				t.Fatal("Open accepted overlapping segments")
			}
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "overlap") {
				t.Fatalf("Open: %v; want ErrCorrupt naming the overlap", err)
			}
		})
	}
}

// emptyNextSegment makes a log of three one-record batches whose
// partition has an empty next segment after them (a failed roll's
// leftover: the segments overlap) and returns it, that file and the
// records.
func emptyNextSegment(t *testing.T) (*vfs.MemFS, string, []intentlog.Record) {
	t.Helper()
	mem := vfs.NewMem()
	l := openLog(t, "/log", Options{FS: mem})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	var want []intentlog.Record
	for _, tag := range []string{"a", "b", "c"} {
		want = append(want, appendBatch(t, l, tag, 1)...)
	}
	noErr(t, l.Close())
	next := segmentPath(filepath.Join("/log", testTopic, "0"), 2, logExt)
	f, err := mem.OpenFile(next, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	noErr(t, err)
	noErr(t, f.Close())
	return mem, next, want
}

// opensWith checks that the log in mem opens and holds want.
func opensWith(t *testing.T, mem *vfs.MemFS, want []intentlog.Record) {
	t.Helper()
	l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open once the empty segment is removed: %v", err)
	}
	defer l.Close()
	sameRecords(t, "after the removal", readAll(t, l, 0), want)
}

// TestOverlapEmptyNextRemoved: the overlap error says that an empty next
// segment is a failed roll's leftover, to remove before starting again.
// Once it is removed, the log opens with every record: the refused Open
// must not leave the index it rebuilt for the first segment, which would
// say that a later segment existed and refuse the next Open as segments
// missing.
func TestOverlapEmptyNextRemoved(t *testing.T) {
	mem, next, want := emptyNextSegment(t)
	if l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "if that one is empty") {
		if l != nil {
			_ = l.Close()
		}
		t.Fatalf("Open: %v; want the overlap, naming the empty segment to remove", err)
	}
	noErr(t, mem.Remove(next))
	opensWith(t, mem, want)
}

// TestRepairNamesOverlap: Repair does not resolve overlapping segments
// (no file says which one holds the true records), but it must not report
// a sound log either: `wail log repair` said "nothing to repair" and the
// start then failed on the overlap. It fails with the overlap, as Open
// does, and changes nothing.
func TestRepairNamesOverlap(t *testing.T) {
	mem, next, want := emptyNextSegment(t)
	rep, err := Repair("/log", Options{FS: mem, Logger: testLogger(t)})
	if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "the segments overlap") {
		t.Fatalf("Repair of overlapping segments: %+v, %v; want ErrCorrupt naming the overlap", rep, err)
	}
	noErr(t, mem.Remove(next))
	opensWith(t, mem, want)
}

// TestRepairNamesMissingSegments: segment files missing at the end of a
// partition (or all of them, or its directory) are not repaired (no file
// says what they held), but Repair must not report a sound log: `wail log
// repair` said "nothing to repair" and the start then failed on them. It
// fails with Open's error, whose command (accepting the loss) lets the log
// open.
func TestRepairNamesMissingSegments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove func(t *testing.T, mem *vfs.MemFS, pdir string)
		want   string
	}{
		{"last segment", func(t *testing.T, mem *vfs.MemFS, pdir string) {
			bases, _, err := listSegments(mem, pdir)
			noErr(t, err)
			if len(bases) < 2 {
				t.Fatalf("segments %v; want a roll", bases)
			}
			noErr(t, mem.Remove(segmentPath(pdir, bases[len(bases)-1], logExt)))
		}, "are missing"},
		{"every segment", func(t *testing.T, mem *vfs.MemFS, pdir string) {
			ents, err := mem.ReadDir(pdir)
			noErr(t, err)
			for _, e := range ents {
				noErr(t, mem.Remove(filepath.Join(pdir, e.Name())))
			}
		}, "no segment file is left"},
		{"directory", func(t *testing.T, mem *vfs.MemFS, pdir string) {
			ents, err := mem.ReadDir(pdir)
			noErr(t, err)
			for _, e := range ents {
				noErr(t, mem.Remove(filepath.Join(pdir, e.Name())))
			}
			noErr(t, mem.Remove(pdir))
		}, "the partition's directory is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			l := openLog(t, "/log", Options{FS: mem, SegmentBytes: 800})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for i := range 4 {
				appendBatch(t, l, fmt.Sprint("batch-", i, "-", strings.Repeat("v", 300)), 1)
			}
			noErr(t, l.Close())
			tc.remove(t, mem, filepath.Join("/log", testTopic, "0"))
			_, openErr := Open("/log", Options{FS: mem, Logger: testLogger(t)})
			if !errors.Is(openErr, intentlog.ErrCorrupt) || !strings.Contains(openErr.Error(), tc.want) {
				t.Fatalf("Open: %v; want ErrCorrupt with %q", openErr, tc.want)
			}
			rep, err := Repair("/log", Options{FS: mem, Logger: testLogger(t)})
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Repair: %+v, %v; want ErrCorrupt with %q", rep, err, tc.want)
			}
		})
	}
}
