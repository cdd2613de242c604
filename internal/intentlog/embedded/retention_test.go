package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

func TestRetentionBytes(t *testing.T) {
	t.Parallel()
	const limit = 3000
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1024, RetentionCheckInterval: -1, NoSync: true}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{RetentionBytes: limit})
	ctx := context.Background()
	early, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer early.Close()
	var want []intentlog.Record
	for i := range 100 {
		want = append(want, appendBatch(t, l, fmt.Sprintf("%03d", i), 1)...)
	}
	start, end, err := l.Bounds(ctx, testTopic, 0)
	noErr(t, err)
	logs := segmentFiles(t, dir, 0, logExt)
	var total int64
	for _, p := range logs {
		total += fileSize(t, p)
	}
	if start == 0 || end != 100 || total > limit+opts.SegmentBytes {
		t.Fatalf("bounds [%d, %d), %d bytes in %d segments; want start > 0, end 100, at most %d bytes",
			start, end, total, len(logs), limit+opts.SegmentBytes)
	}
	if base := segmentBase(t, logs[0]); base != start {
		t.Errorf("first segment file starts at %d, Bounds start is %d", base, start)
	}
	if _, err := early.Next(ctx); !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
		t.Errorf("reader at 0 after retention: %v, want ErrOffsetOutOfRange", err)
	}
	if _, err := l.NewReader(testTopic, 0, start-1); !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
		t.Errorf("NewReader below start: %v, want ErrOffsetOutOfRange", err)
	}
	sameRecords(t, "retained", readAll(t, l, 0), want[start:])
	noErr(t, l.Close())
	l = openLog(t, dir, opts)
	defer l.Close()
	if s, e, err := l.Bounds(ctx, testTopic, 0); err != nil || s != start || e != end {
		t.Errorf("after reopen: bounds [%d, %d), %v; want [%d, %d)", s, e, err, start, end)
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestRetentionTime(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	opts := Options{SegmentBytes: 1024, RetentionCheckInterval: 5 * time.Millisecond, NoSync: true, Now: clock.Now}
	l := openLog(t, t.TempDir(), opts)
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{Retention: time.Hour})
	ctx := context.Background()
	var want []intentlog.Record
	for i := range 30 {
		want = append(want, appendBatch(t, l, fmt.Sprintf("old-%02d", i), 1)...)
	}
	clock.Advance(30 * time.Minute)
	for i := range 30 {
		want = append(want, appendBatch(t, l, fmt.Sprintf("new-%02d", i), 1)...)
	}
	if start, _, _ := l.Bounds(ctx, testTopic, 0); start != 0 {
		t.Fatalf("start %d before anything expired", start)
	}
	// Now the old records are 89 minutes old, the new ones 59: the ticker
	// deletes the segments holding only old records.
	clock.Advance(59 * time.Minute)
	start := waitForStart(t, l, func(s int64) bool { return s > 0 })
	if start > 30 {
		t.Fatalf("start %d: segments with unexpired records were deleted", start)
	}
	sameRecords(t, "retained", readAll(t, l, 0), want[start:])
	// Everything expired: only the active segment remains.
	clock.Advance(time.Hour)
	start = waitForStart(t, l, func(s int64) bool { return s > 30 })
	// The start moves first; the ticker deletes the files right after.
	waitFor(t, "only the active segment to be left", func() bool { return len(segmentFiles(t, l.dir, 0, logExt)) == 1 })
	sameRecords(t, "retained", readAll(t, l, 0), want[start:])
}

// waitForStart waits for the retention ticker to move the start offset.
func waitForStart(t *testing.T, l *Log, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		start, _, err := l.Bounds(context.Background(), testTopic, 0)
		noErr(t, err)
		if ok(start) {
			return start
		}
		if time.Now().After(deadline) {
			t.Fatalf("start offset stuck at %d", start)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// retentionLog opens a log on a MemFS (wrapped in hookFS with hook) whose
// segments hold exactly three single-record batches; rec(i) is the i-th
// record and all its batches take the same room.
func retentionLog(t *testing.T, clock *fakeClock, hook func(vfs.Op, string, int64, int) error, topts intentlog.TopicOptions) (*Log, *logBuffer, vfs.FS) {
	t.Helper()
	batch := int64(batchHeaderLen + len(appendRecord(nil, 0, retentionRec(0))))
	logs := &logBuffer{}
	fsys := &hookFS{FS: vfs.NewMem(), hook: hook}
	l := openLog(t, "/log", Options{FS: fsys, SegmentBytes: 3 * batch, RetentionCheckInterval: -1, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() { _ = l.Close() })
	createTestTopic(t, l, 1, topts)
	return l, logs, fsys
}

func retentionRec(i int) *intentlog.Record {
	return &intentlog.Record{Key: fmt.Appendf(nil, "key-%03d", i), Value: []byte("value")}
}

// appendAt appends records [from, to) one per batch at the clock's time.
func appendAt(t *testing.T, l *Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{retentionRec(i)}))
	}
}

// segmentsOn returns the segment files (.log and .idx) of partition 0.
func segmentsOn(t *testing.T, fsys vfs.FS) []string {
	t.Helper()
	ents, err := fsys.ReadDir(craftedDir)
	noErr(t, err)
	var out []string
	for _, e := range ents {
		if ext := filepath.Ext(e.Name()); ext == logExt || ext == idxExt {
			out = append(out, e.Name())
		}
	}
	return out
}

func startOffset(t *testing.T, l *Log) int64 {
	t.Helper()
	start, _, err := l.Bounds(context.Background(), testTopic, 0)
	noErr(t, err)
	return start
}

// TestRetentionBoundaries: a segment goes once its newest record is older
// than Retention (not when exactly as old), or while the partition is
// larger than RetentionBytes (not when exactly as large); the active
// segment never goes; a topic with only one of the two limits is not
// trimmed by the other.
func TestRetentionBoundaries(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	noHook := func(vfs.Op, string, int64, int) error { return nil }
	t.Run("bytes", func(t *testing.T) {
		clock := &fakeClock{}
		clock.ns.Store(t0.UnixNano())
		batch := int64(batchHeaderLen + len(appendRecord(nil, 0, retentionRec(0))))
		l, logs, fsys := retentionLog(t, clock, noHook, intentlog.TopicOptions{RetentionBytes: 7 * batch})
		appendAt(t, l, 0, 10) // 3 full segments and 1 batch; the roll to the 4th deletes the 1st
		if s := startOffset(t, l); s != 3 {
			t.Fatalf("start %d after the roll, want 3", s)
		}
		clock.Advance(1000 * time.Hour)
		l.enforceRetention() // exactly 7 batches left: nothing more goes
		if s := startOffset(t, l); s != 3 {
			t.Fatalf("start %d with the partition exactly at RetentionBytes, want 3", s)
		}
		if got := fmt.Sprint(segmentsOn(t, fsys)); got != "[00000000000000000003.idx 00000000000000000003.log 00000000000000000006.idx 00000000000000000006.log 00000000000000000009.log]" {
			t.Fatalf("segment files %s", got)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Fatalf("warnings:\n%s", logs)
		}
	})
	t.Run("time", func(t *testing.T) {
		clock := &fakeClock{}
		clock.ns.Store(t0.UnixNano())
		l, logs, fsys := retentionLog(t, clock, noHook, intentlog.TopicOptions{Retention: time.Hour})
		appendAt(t, l, 0, 3)
		clock.Advance(time.Second)
		appendAt(t, l, 3, 6)
		clock.Advance(time.Second)
		appendAt(t, l, 6, 7)
		for _, step := range []struct {
			now   time.Time
			start int64
		}{
			{t0.Add(time.Hour), 0},                                  // the first segment is exactly an hour old
			{t0.Add(time.Hour + time.Microsecond), 3},               // now older
			{t0.Add(time.Hour + time.Second), 3},                    // the second, exactly
			{t0.Add(time.Hour + time.Second + time.Microsecond), 6}, // only the active one is left
			{t0.Add(1000 * time.Hour), 6},                           // and it stays
		} {
			clock.ns.Store(step.now.UnixNano())
			l.enforceRetention()
			if s := startOffset(t, l); s != step.start {
				t.Fatalf("at %v: start %d, want %d", step.now.Sub(t0), s, step.start)
			}
		}
		if got := fmt.Sprint(segmentsOn(t, fsys)); got != "[00000000000000000006.log]" {
			t.Fatalf("segment files %s, want only the active one", got)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Fatalf("warnings:\n%s", logs)
		}
	})
}

// TestRetentionWhileReading: retention takes a segment out of the log at
// once, but a reader in the middle of reading it finishes, and its files
// are deleted when that reader lets go. Finished reads and OffsetForTime
// hold no segment.
func TestRetentionWhileReading(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{}
	clock.ns.Store(t0.UnixNano())
	g := newGate()
	l, logs, fsys := retentionLog(t, clock, func(op vfs.Op, name string, _ int64, _ int) error {
		g.hold(op, name)
		return nil
	}, intentlog.TopicOptions{Retention: time.Hour})
	appendAt(t, l, 0, 3)
	clock.Advance(time.Second)
	appendAt(t, l, 3, 6)
	appendAt(t, l, 6, 7)
	ctx := context.Background()
	for _, at := range []time.Time{t0, t0.Add(time.Second)} {
		if _, err := l.OffsetForTime(ctx, testTopic, 0, at); err != nil {
			t.Fatal(err)
		}
	}
	readAll(t, l, 0)

	first := segmentPath(craftedDir, 0, logExt)
	g.arm(func(op vfs.Op, name string) bool { return op == vfs.OpRead && name == first })
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer r.Close()
	type result struct {
		recs []intentlog.Record
		err  error
	}
	done := make(chan result, 1)
	go func() {
		recs, err := r.Next(ctx)
		done <- result{recs, err}
	}()
	g.await(t)
	clock.ns.Store(t0.Add(time.Hour + time.Microsecond).UnixNano())
	l.enforceRetention()
	if s := startOffset(t, l); s != 3 {
		t.Fatalf("start %d after retention, want 3", s)
	}
	if _, err := fsys.OpenFile(first, os.O_RDONLY, 0); err != nil {
		t.Fatalf("the segment being read was deleted under its reader: %v", err)
	}
	close(g.release)
	res := <-done
	if res.err != nil || len(res.recs) != 3 || string(res.recs[2].Key) != "key-002" {
		t.Fatalf("the read retention overtook: %d records, %v; want the segment's 3", len(res.recs), res.err)
	}
	if got := fmt.Sprint(segmentsOn(t, fsys)); got != "[00000000000000000003.idx 00000000000000000003.log 00000000000000000006.log]" {
		t.Fatalf("segment files %s after the reader let go, want the first segment's gone", got)
	}
	clock.ns.Store(t0.Add(time.Hour + time.Second + time.Microsecond).UnixNano())
	l.enforceRetention()
	if got := fmt.Sprint(segmentsOn(t, fsys)); got != "[00000000000000000006.log]" {
		t.Fatalf("segment files %s, want only the active one", got)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings:\n%s", logs)
	}
}
