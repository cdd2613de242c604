package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestLostAfterRepair: Lost reports exactly the offsets a repair removed
// (damaged bytes in a sealed segment, a segment file gone), which readers
// skip; a sound log has none, and a closed one says so.
func TestLostAfterRepair(t *testing.T) {
	t.Parallel()
	const batches, per, perSeg = 20, 3, 4
	dir := t.TempDir()
	const batchBytes = batchHeaderLen + per*23 // keys "bNN-i", values "value of bNN-i"
	opts := Options{SegmentBytes: perSeg * batchBytes, IndexIntervalBytes: 3 * batchBytes}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range batches {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), per)
	}
	ctx := context.Background()
	if lost, err := l.Lost(ctx, testTopic, 0); err != nil || len(lost) != 0 {
		t.Fatalf("Lost of a sound log = %v, %v; want none", lost, err)
	}
	noErr(t, l.Close())
	if _, err := l.Lost(ctx, testTopic, 0); !errors.Is(err, intentlog.ErrClosed) {
		t.Fatalf("Lost of a closed log: %v, want ErrClosed", err)
	}

	// Segment 1 (offsets 12-23): its second batch damaged; segment 3
	// (offsets 36-47) gone.
	segs := segmentFiles(t, dir, 0, logExt)
	flipByte(40)(t, segs[1], batchPositions(t, segs[1])[1])
	noErr(t, os.Remove(segs[3]))
	rep, err := Repair(dir, Options{Logger: testLogger(t)})
	noErr(t, err)
	var want []intentlog.Range
	for _, g := range rep.Lost {
		want = append(want, intentlog.Range{From: g.From, To: g.To})
	}
	if !reflect.DeepEqual(want, []intentlog.Range{{From: 15, To: 18}, {From: 36, To: 48}}) {
		t.Fatalf("repair lost %+v; want [15, 18) and [36, 48)", rep.Lost)
	}

	l = openLog(t, dir, opts)
	defer l.Close()
	lost, err := l.Lost(ctx, testTopic, 0)
	if err != nil || !reflect.DeepEqual(lost, want) {
		t.Fatalf("Lost = %v, %v; want %v", lost, err, want)
	}
	// What readers skip is what Lost reports.
	read := map[int64]bool{}
	for _, r := range readGaps(t, l, 0, batches*per) {
		read[r.Offset] = true
	}
	for off := int64(0); off < batches*per; off++ {
		in := false
		for _, g := range lost {
			in = in || off >= g.From && off < g.To
		}
		if read[off] == in {
			t.Fatalf("offset %d: read %v, lost %v", off, read[off], in)
		}
	}
	if _, err := l.Lost(ctx, "nope", 0); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Fatalf("Lost of an unknown topic: %v", err)
	}
}
