package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
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
	if n := len(segmentFiles(t, l.dir, 0, logExt)); n != 1 {
		t.Errorf("%d segments left, want only the active one", n)
	}
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
