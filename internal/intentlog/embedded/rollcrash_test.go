package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// rollCrashRun appends one-record batches to a log on fsys, in segments of
// a few batches, until the FS crashes or n were acknowledged; it returns
// the acknowledged keys by offset.
func rollCrashRun(t *testing.T, fsys vfs.FS, create bool, from, n int) map[int64]string {
	t.Helper()
	opts := Options{FS: fsys, SegmentBytes: 200, IndexIntervalBytes: 64, RetentionCheckInterval: -1,
		Logger: slog.New(slog.DiscardHandler)}
	l, err := Open("/log", opts)
	if err != nil {
		return nil // crashed during Open
	}
	defer l.Close()
	if create {
		if err := l.CreateTopic(context.Background(), testTopic, 1, intentlog.TopicOptions{}); err != nil {
			return nil
		}
	}
	acks := map[int64]string{}
	for i := range n {
		key := fmt.Sprintf("k%03d", from+i)
		r, err := tryAppend(l, key)
		if err != nil {
			break
		}
		acks[r.Offset] = key
	}
	return acks
}

// TestRollCrashAtEveryStep: a power loss before each file operation of a
// run of appends that rolls a segment every few batches (the new segment
// created, the directory synced, the sealed one's .idx written and
// renamed; torn unsynced bytes kept), then a second power loss before each
// file operation of the recovery and the appends after it (a torn tail
// truncated and then lost again, the .idx rebuilt, the directory synced),
// leaves a log that opens with every acknowledged record at its offset,
// every index entry naming its batch, and no offset given twice.
func TestRollCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	const n1, n2 = 12, 4
	runs := 0
	for at := 1; ; at++ {
		mem := vfs.NewMem()
		c1 := &stepCrashFS{MemFS: mem, at: at, armed: true, torn: rand.New(rand.NewPCG(uint64(at), 1))}
		acks := rollCrashRun(t, c1, true, 0, n1)
		img1 := c1.img
		if img1 == nil {
			if at < 20 {
				t.Fatalf("only %d file operations: %v", at-1, c1.ops)
			}
			t.Logf("%d first crashes, %d second ones; the run's operations: %v", at-1, runs, c1.ops)
			return
		}
		for at2 := 1; ; at2++ {
			// The first crash again (the run is deterministic), then a
			// second one at step at2 of the recovery and the appends.
			mem := vfs.NewMem()
			c1 := &stepCrashFS{MemFS: mem, at: at, armed: true, torn: rand.New(rand.NewPCG(uint64(at), 1))}
			rollCrashRun(t, c1, true, 0, n1)
			c2 := &stepCrashFS{MemFS: c1.img, at: at2, armed: true, torn: rand.New(rand.NewPCG(uint64(at2), 2))}
			acks2 := rollCrashRun(t, c2, false, 100, n2)
			img2 := c2.img
			if img2 == nil {
				img2 = c1.img.Crash()
			}
			opts := Options{FS: img2, SegmentBytes: 200, IndexIntervalBytes: 64, RetentionCheckInterval: -1,
				Logger: slog.New(slog.DiscardHandler)}
			l, err := Open("/log", opts)
			if err != nil {
				t.Fatalf("crash before %q, then before %q: Open: %v", c1.ops[len(c1.ops)-1], c2.ops[len(c2.ops)-1], err)
			}
			got := map[int64]string{}
			_, end, err := l.Bounds(context.Background(), testTopic, 0)
			if err == nil && end > 0 {
				for _, r := range readAll(t, l, 0) {
					got[r.Offset] = string(r.Key)
				}
			}
			checkIndexes(t, l, fmt.Sprintf("crash at %d then %d", at, at2))
			_ = l.Close()
			for _, a := range []map[int64]string{acks, acks2} {
				for off, key := range a {
					if got[off] != key {
						t.Fatalf("crash before %q, then before %q: offset %d holds %q, acknowledged %q",
							c1.ops[len(c1.ops)-1], c2.ops[len(c2.ops)-1], off, got[off], key)
					}
				}
			}
			runs++
			if c2.img == nil {
				break
			}
		}
	}
}
