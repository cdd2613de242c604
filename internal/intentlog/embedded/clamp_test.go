package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestCommittedBeyondEnd: the log loses its tail after a group committed
// past it (here a repair removes the damaged last batches). Open lowers the
// committed offset to the new end, loudly, and every record appended
// afterwards is read from the committed position: none is skipped.
func TestCommittedBeyondEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 5)
	path := segmentFiles(t, dir, 0, logExt)[0]
	damageAt := fileSize(t, path)
	appendBatch(t, l, "b", 5)
	appendBatch(t, l, "c", 5)
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{0: 15}))
	noErr(t, l.Close())
	// Damage batch b: Open refuses; repair removes b, and c becomes a
	// segment of its own. Then the disk "loses" c as well.
	flipByte(40)(t, path, damageAt)
	rep, err := Repair(dir, Options{Logger: testLogger(t)})
	noErr(t, err)
	if len(rep.Lost) != 1 || rep.Lost[0].From != 5 || rep.Lost[0].To != 10 {
		t.Fatalf("repair lost %+v, want [5, 10)", rep.Lost)
	}
	segs := segmentFiles(t, dir, 0, logExt)
	if len(segs) != 2 {
		t.Fatalf("segments after repair: %v", segs)
	}
	noErr(t, truncateFile(segs[1], 0))

	logs := &logBuffer{}
	l = openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer l.Close()
	_, end, err := l.Bounds(ctx, testTopic, 0)
	noErr(t, err)
	if end != 10 {
		t.Fatalf("end after losing the tail: %d, want 10", end)
	}
	got, err := l.Committed(ctx, "g", testTopic)
	noErr(t, err)
	if got[0] != end {
		t.Fatalf("committed offset %d after Open, want it lowered to the end %d", got[0], end)
	}
	if w := l.Warnings(); len(w) != 1 || !strings.Contains(w[0], "group g committed offset 15") {
		t.Fatalf("Warnings() = %q", w)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "committed offset beyond the log end") {
		t.Fatalf("no error logged:\n%s", logs)
	}
	var want []intentlog.Record
	for i := range 12 {
		want = append(want, appendBatch(t, l, fmt.Sprint("new-", i), 1)...)
	}
	sameRecords(t, "read from the committed offset", readFrom(t, l, 0, got[0], got[0]+12), want)

	// Reopening changes nothing more.
	noErr(t, l.Close())
	l = openLog(t, dir, Options{})
	if w := l.Warnings(); len(w) != 0 {
		t.Fatalf("Warnings() on the next Open = %q", w)
	}
	noErr(t, l.Close())
}

// TestOpenCraftedOffsets: an offsets file whose checksum is valid but whose
// entries no writer makes (a partition no topic can have, a negative
// offset, a partition twice or out of order) fails Open with ErrCorrupt
// naming the file, as a file with a bad checksum does; Open never panics
// on it. (A partition the topic does not have but could is left alone:
// TestClampOffsets.)
func TestOpenCraftedOffsets(t *testing.T) {
	t.Parallel()
	type entry struct {
		p   int32
		off int64
	}
	for name, ents := range map[string][]entry{
		"negative partition": {{0, 1}, {-1, 5}},
		"min partition":      {{math.MinInt32, 0}},
		"partition = max":    {{0, 1}, {maxPartitions, 1}},
		"huge partition":     {{math.MaxInt32, 1}},
		"negative offset":    {{0, -1}},
		"min offset":         {{1, math.MinInt64}},
		"duplicate":          {{0, 1}, {0, 2}},
		"descending":         {{1, 1}, {0, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mem := vfs.NewMem()
			l := openLog(t, "/log", Options{FS: mem})
			createTestTopic(t, l, 2, intentlog.TopicOptions{})
			noErr(t, l.Close())
			// Encoded by hand: encodeOffsets sorts a map, which can
			// hold neither duplicates nor an order.
			b := append([]byte(nil), offsetsMagic...)
			b = binary.BigEndian.AppendUint32(b, uint32(len(ents)))
			for _, e := range ents {
				b = binary.BigEndian.AppendUint32(b, uint32(e.p))
				b = binary.BigEndian.AppendUint64(b, uint64(e.off))
			}
			b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
			path := "/log/" + testTopic + "/offsets/g"
			writeFile(t, mem, path, b)
			l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)})
			if err == nil {
				got, cerr := l.Committed(context.Background(), "g", testTopic)
				_ = l.Close()
				t.Fatalf("Open accepted %v: Committed = %v, %v", ents, got, cerr)
			}
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v, want ErrCorrupt naming %s", err, path)
			}
		})
	}
}
