package embedded

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

const craftedDir = "/log/t/0"

// craftedTime is the time of crafted records (plus their index, in µs).
var craftedTime = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// craftLog creates a one-partition topic on fsys (a MemFS when nil) at /log
// and replaces its files with segments written here: each segment a list
// of batches of n records, offsets following on from first. It returns the
// log opened with opts and every record.
func craftLog(t *testing.T, fsys vfs.FS, opts Options, first int64, segments ...[]int) (*Log, vfs.FS, []intentlog.Record) {
	t.Helper()
	if fsys == nil {
		fsys = vfs.NewMem()
	}
	opts.FS = fsys
	l := openLog(t, "/log", opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	noErr(t, l.Close())
	noErr(t, fsys.Remove(segmentPath(craftedDir, 0, logExt)))
	var all []intentlog.Record
	off := first
	for _, batches := range segments {
		var data []byte
		base := off
		for _, n := range batches {
			recs := make([]intentlog.Record, n)
			for i := range recs {
				recs[i] = intentlog.Record{Key: fmt.Appendf(nil, "key-%d", off+int64(i)), Value: fmt.Appendf(nil, "value-%d", off+int64(i)),
					Offset: off + int64(i), Timestamp: craftedTime.Add(time.Duration(off-first) * time.Microsecond)}
			}
			data = encodeBatch(data, off, recs[0].Timestamp.UnixMicro(), recs)
			all = append(all, recs...)
			off += int64(n)
		}
		writeFile(t, fsys, segmentPath(craftedDir, base, logExt), data)
	}
	l = openLog(t, "/log", opts)
	t.Cleanup(func() { _ = l.Close() })
	return l, fsys, all
}

// repeat returns n copies of v.
func repeat(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// nextSizes reads partition 0 from off to its end and returns how many
// records each Next returned.
func nextSizes(t *testing.T, l *Log, off int64) []int {
	t.Helper()
	_, end, err := l.Bounds(context.Background(), testTopic, 0)
	noErr(t, err)
	r, err := l.NewReader(testTopic, 0, off)
	noErr(t, err)
	defer r.Close()
	var sizes []int
	for r.Position() < end {
		recs, err := r.Next(context.Background())
		noErr(t, err)
		if len(recs) == 0 {
			t.Fatalf("Next at %d returned no record", r.Position())
		}
		for i, rec := range recs {
			if want := r.Position() - int64(len(recs)-i); rec.Offset != want {
				t.Fatalf("record %q at %d, want offset %d", rec.Key, rec.Offset, want)
			}
		}
		sizes = append(sizes, len(recs))
	}
	return sizes
}

// TestNextLimits: one Next returns at most maxReadRecords records, also
// from the middle of a batch larger than that (the rest comes with the
// following calls, without reading the batch again), and stops at
// maxReadBytes of batches.
func TestNextLimits(t *testing.T) {
	t.Parallel()
	fsys, read := countReads()
	l, _, _ := craftLog(t, fsys, Options{}, 0, []int{2500})
	read.Store(0)
	if got := fmt.Sprint(nextSizes(t, l, 0)); got != "[1024 1024 452]" {
		t.Errorf("one batch of 2500 records: Next returned %s records, want [1024 1024 452]", got)
	}
	n := read.Load()
	if size := int64(len(readFile(t, fsys, segmentPath(craftedDir, 0, logExt)))); n != size {
		t.Errorf("reading a %d-byte batch read %d bytes: the records kept for the next calls were read again", size, n)
	}
	for off, want := range map[int64]string{10: "[1024 1024 442]", 2000: "[500]"} {
		if got := fmt.Sprint(nextSizes(t, l, off)); got != want {
			t.Errorf("one batch of 2500 records read from %d: Next returned %s records, want %s", off, got, want)
		}
	}
	l, _, _ = craftLog(t, nil, Options{}, 0, repeat(2000, 1))
	if got := fmt.Sprint(nextSizes(t, l, 0)); got != "[1024 976]" {
		t.Errorf("2000 batches of one record: Next returned %s records, want [1024 976]", got)
	}
	l, _, _ = craftLog(t, nil, Options{}, 0, append(repeat(1000, 1), 2500))
	if got := fmt.Sprint(nextSizes(t, l, 0)); got != "[1024 1024 1024 428]" {
		t.Errorf("1000 batches of one record then one of 2500: Next returned %s records, want [1024 1024 1024 428]", got)
	}

	// Batches of exactly 64 KiB: the 16th reaches maxReadBytes.
	rec := intentlog.Record{Key: []byte("key-00")}
	for rec.Value = make([]byte, 60000); len(encodeBatch(nil, 0, 0, []intentlog.Record{rec})) < 64<<10; {
		rec.Value = append(rec.Value, 0)
	}
	var data []byte
	for i := range 17 {
		rec.Key = fmt.Appendf(nil, "key-%02d", i)
		data = encodeBatch(data, int64(i), 0, []intentlog.Record{rec})
	}
	mem := vfs.NewMem()
	l = openLog(t, "/log", Options{FS: mem})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	noErr(t, l.Close())
	writeFile(t, mem, segmentPath(craftedDir, 0, logExt), data)
	l = openLog(t, "/log", Options{FS: mem})
	defer l.Close()
	if got := fmt.Sprint(nextSizes(t, l, 0)); got != "[16 1]" {
		t.Errorf("17 batches of 64 KiB: Next returned %s records, want [16 1]", got)
	}
}

// TestTailingReaderResumes: a reader that follows appends resumes where
// it stopped; it does not read the segment again from its last index
// entry at every Next.
func TestTailingReaderResumes(t *testing.T) {
	t.Parallel()
	fsys, read := countReads()
	l := openLog(t, "/log", Options{FS: fsys, NoSync: true, IndexIntervalBytes: 1 << 30})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer r.Close()
	for i := range 200 {
		want := appendBatch(t, l, fmt.Sprint(i), 1)
		recs, err := r.Next(context.Background())
		noErr(t, err)
		sameRecords(t, "tailing read", recs, want)
	}
	n := read.Load()
	if size := int64(len(readFile(t, fsys, segmentPath(craftedDir, 0, logExt)))); n > 2*size {
		t.Fatalf("a tailing reader read %d bytes of a %d-byte segment", n, size)
	}
}

// TestReadPastDamagedBatch: a reader starting after a damaged batch of a
// sealed segment does not need it and does not fail on it (only the
// framing of batches before the asked offset is read).
func TestReadPastDamagedBatch(t *testing.T) {
	t.Parallel()
	fsys := vfs.NewMem()
	l, _, all := craftLog(t, fsys, Options{IndexIntervalBytes: 1 << 30}, 0, []int{3, 3, 3}, []int{3})
	noErr(t, l.Close())
	path := segmentPath(craftedDir, 0, logExt)
	data := readFile(t, fsys, path)
	second := batchesOf(t, fsys, path)[0].size
	data[second+40] ^= 0x10 // a record byte of the second batch
	writeFile(t, fsys, path, data)
	l = openLog(t, "/log", Options{FS: fsys, IndexIntervalBytes: 1 << 30})
	defer l.Close()
	sameRecords(t, "from the batch after the damage", readFrom(t, l, 0, 6, 12), all[6:])
	if _, err := readFromErr(l, 3); err == nil || !strings.Contains(err.Error(), "crc mismatch") {
		t.Fatalf("reading the damaged batch: %v, want a crc mismatch", err)
	}
}

// readFromErr reads partition 0 from off until an error.
func readFromErr(l *Log, off int64) ([]intentlog.Record, error) {
	r, err := l.NewReader(testTopic, 0, off)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []intentlog.Record
	for {
		recs, err := r.Next(context.Background())
		if err != nil {
			return out, err
		}
		out = append(out, recs...)
	}
}

// TestLargeOffsets: a partition whose offsets are past 2^32 (relative
// offsets in segments and indexes stay small) appends, reads from
// anywhere, finds offsets by time and reopens without rebuilding its
// indexes; a rebuilt index is identical to the one written.
func TestLargeOffsets(t *testing.T) {
	t.Parallel()
	const first = 5_000_000_000
	clock := &fakeClock{}
	clock.ns.Store(craftedTime.Add(time.Second).UnixNano())
	logs := &logBuffer{}
	opts := Options{SegmentBytes: 300, IndexIntervalBytes: 64, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	opts.FS = vfs.NewMem()
	l, fsys, want := craftLog(t, opts.FS, opts, first, []int{3})
	ctx := context.Background()
	for i := range 20 {
		clock.Advance(time.Millisecond)
		want = append(want, appendBatch(t, l, fmt.Sprint("b", i), 2)...)
	}
	if start, end, err := l.Bounds(ctx, testTopic, 0); err != nil || start != first || end != first+43 {
		t.Fatalf("Bounds = %d, %d, %v; want %d, %d", start, end, err, first, first+43)
	}
	check := func(what string) {
		t.Helper()
		for _, from := range []int64{0, 1, 4, 17, 30, 42} {
			sameRecords(t, fmt.Sprint(what, ": from ", from), readFrom(t, l, 0, first+from, first+43), want[from:])
		}
		for i, r := range want {
			off, err := l.OffsetForTime(ctx, testTopic, 0, r.Timestamp)
			if w := want[0].Offset + int64(firstAtOrAfter(want, r.Timestamp)); err != nil || off != w {
				t.Fatalf("%s: OffsetForTime(record %d) = %d, %v; want %d", what, i, off, err, w)
			}
		}
	}
	check("appended")
	idxs := map[string][]byte{}
	ents, err := fsys.ReadDir(craftedDir)
	noErr(t, err)
	for _, e := range ents {
		if filepath.Ext(e.Name()) == idxExt {
			idxs[e.Name()] = readFile(t, fsys, filepath.Join(craftedDir, e.Name()))
		}
	}
	if len(idxs) < 3 {
		t.Fatalf("%d sealed segments; the test wants several", len(idxs))
	}
	for _, e := range ents {
		if info, _ := e.Info(); filepath.Ext(e.Name()) == logExt && idxs[strings.TrimSuffix(e.Name(), logExt)+idxExt] != nil &&
			info.Size() <= opts.SegmentBytes/2 {
			t.Fatalf("sealed segment %s holds only %d bytes of %d: rolled too early", e.Name(), info.Size(), opts.SegmentBytes)
		}
	}
	noErr(t, l.Close())
	l = openLog(t, "/log", opts)
	check("reopened")
	if strings.Contains(logs.String(), "rebuilt") || strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("sound indexes rebuilt or warnings:\n%s", logs)
	}
	noErr(t, l.Close())
	for name := range idxs {
		noErr(t, fsys.Remove(filepath.Join(craftedDir, name)))
	}
	l = openLog(t, "/log", opts)
	defer l.Close()
	for name, b := range idxs {
		if got := readFile(t, fsys, filepath.Join(craftedDir, name)); !bytes.Equal(got, b) {
			t.Fatalf("%s rebuilt as %x, written as %x", name, got, b)
		}
	}
	check("indexes rebuilt")
}

// firstAtOrAfter is the index of the first record at or after ts.
func firstAtOrAfter(recs []intentlog.Record, ts time.Time) int {
	for i, r := range recs {
		if !r.Timestamp.Before(ts) {
			return i
		}
	}
	return len(recs)
}

// TestOffsetForTimeNextSegment: when a segment's newest batch time is at
// or after the asked time but none of its records is (a batch may stamp
// its records before its own time), OffsetForTime goes on to the next
// segment.
func TestOffsetForTimeNextSegment(t *testing.T) {
	t.Parallel()
	mem := vfs.NewMem()
	l := openLog(t, "/log", Options{FS: mem})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	noErr(t, l.Close())
	at := func(us int64) time.Time { return craftedTime.Add(time.Duration(us) * time.Microsecond) }
	early := []intentlog.Record{{Key: []byte("a"), Timestamp: at(100)}, {Key: []byte("b"), Timestamp: at(100)}}
	writeFile(t, mem, segmentPath(craftedDir, 0, logExt), encodeBatch(nil, 0, at(200).UnixMicro(), early))
	writeFile(t, mem, segmentPath(craftedDir, 2, logExt), encodeBatch(nil, 2, at(300).UnixMicro(),
		[]intentlog.Record{{Key: []byte("c"), Timestamp: at(300)}}))
	l = openLog(t, "/log", Options{FS: mem})
	defer l.Close()
	for us, want := range map[int64]int64{50: 0, 100: 0, 150: 2, 300: 2, 301: 3} {
		if off, err := l.OffsetForTime(context.Background(), testTopic, 0, at(us)); err != nil || off != want {
			t.Errorf("OffsetForTime(+%dµs) = %d, %v; want %d", us, off, err, want)
		}
	}
}
