package embedded

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestOpenMakesWhatItKeepsDurable: Open builds on the bytes and entries a
// previous process left in the page cache, never made durable: a batch
// written before a kill (or whose fsync and truncate failed), a segment
// created before the directory fsync. Records acknowledged after the
// restart must survive a power loss, and Open must then start: so Open
// makes durable what it keeps before anything is appended after it.
func TestOpenMakesWhatItKeepsDurable(t *testing.T) {
	const per = 3
	// batchBytes measures one batch of appendBatch(t, l, tag, per) with a
	// two-character tag.
	batchBytes := func(t *testing.T) int64 {
		mem := vfs.NewMem()
		l := openLog(t, "/log", Options{FS: mem})
		defer l.Close()
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		appendBatch(t, l, "b0", per)
		st, err := vfs.ReadFile(mem, segmentPath("/log/t/0", 0, logExt))
		noErr(t, err)
		return int64(len(st))
	}

	// The batch that fills the first segment is written but its fsync
	// fails and the truncate back fails too (as a kill between write and
	// fsync leaves it): the restart keeps it, then rolls, and the records
	// acknowledged in the new segment sit after bytes a power loss drops.
	t.Run("unsynced batch sealed", func(t *testing.T) {
		bb := batchBytes(t)
		mem := vfs.NewMem()
		efs := vfs.NewErrorFS(mem)
		opts := Options{FS: efs, SegmentBytes: 3 * bb}
		l := openLog(t, "/log", opts)
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		want := appendBatch(t, l, "b0", per)
		want = append(want, appendBatch(t, l, "b1", per)...)
		efs.Inject(vfs.Fault{Ops: vfs.OpSync, Path: "*.log", Times: 1})
		efs.Inject(vfs.Fault{Ops: vfs.OpTruncate, Path: "*.log", Times: 1})
		if _, err := tryAppend(l, "b2"); err == nil {
			t.Fatal("append with a failing fsync succeeded")
		}
		_ = l.Close()

		// wail restarts (the machine does not): the page cache still
		// holds the batch.
		l = openLog(t, "/log", Options{FS: mem, SegmentBytes: 3 * bb})
		kept := readAll(t, l, 0)
		want = append(want, appendBatch(t, l, "b3", per)...)
		if n := len(segmentFiles(t, "/log", 0, logExt)); n != 0 { // MemFS: not on the OS
			t.Fatalf("segment files on the OS: %d", n)
		}
		noErr(t, l.Close())

		mem = mem.Crash()
		l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("Open after a power loss: %v (records acknowledged after the restart sit after bytes it never made durable)", err)
		}
		defer l.Close()
		got := readAll(t, l, 0)
		if len(got) == len(want) {
			sameRecords(t, "after the power loss", got, want)
		} else {
			// The kept batch survives too: it was made durable.
			sameRecords(t, "after the power loss", got, append(kept, want[len(want)-per:]...))
		}
	})

	// A roll created the next segment, then the process was killed before
	// the directory fsync: the restart appends to that segment and fsyncs
	// it, but its name is not durable.
	t.Run("segment name not durable", func(t *testing.T) {
		mem := vfs.NewMem()
		l := openLog(t, "/log", Options{FS: mem})
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		want := appendBatch(t, l, "b0", per)
		noErr(t, l.Close())
		f, err := mem.OpenFile(segmentPath(filepath.Join("/log", testTopic, "0"), per, logExt), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		noErr(t, err)
		noErr(t, f.Close())

		l = openLog(t, "/log", Options{FS: mem})
		want = append(want, appendBatch(t, l, "b1", per)...)
		noErr(t, l.Close())

		mem = mem.Crash()
		l = openLog(t, "/log", Options{FS: mem})
		defer l.Close()
		sameRecords(t, "after the power loss", readAll(t, l, 0), want)
	})

	// A failed fsync at Open fails Open: nothing is built on bytes that
	// may not be on the disk.
	t.Run("sync fails", func(t *testing.T) {
		for _, op := range []vfs.Op{vfs.OpSync, vfs.OpSyncDir} {
			mem := vfs.NewMem()
			l := openLog(t, "/log", Options{FS: mem})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			appendBatch(t, l, "b0", per)
			noErr(t, l.Close())
			efs := vfs.NewErrorFS(mem)
			path := "*.log"
			if op == vfs.OpSyncDir {
				path = filepath.Join("/log", testTopic, "0")
			}
			efs.Inject(vfs.Fault{Ops: op, Path: path, Err: syscall.EIO})
			if l, err := Open("/log", Options{FS: efs, Logger: testLogger(t)}); err == nil {
				_ = l.Close()
				t.Fatalf("Open with a failing %v: no error", op)
			}
		}
	})
}
