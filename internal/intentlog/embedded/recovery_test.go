package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

const testTopic = "t"

// appendBatch appends one Append call of n records to a 1-partition topic.
func appendBatch(t testing.TB, l *Log, tag string, n int) []intentlog.Record {
	t.Helper()
	recs := make([]*intentlog.Record, n)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: fmt.Appendf(nil, "%s-%d", tag, i), Value: fmt.Appendf(nil, "value of %s-%d", tag, i)}
	}
	if err := l.Append(context.Background(), testTopic, recs); err != nil {
		t.Fatalf("Append %s: %v", tag, err)
	}
	out := make([]intentlog.Record, n)
	for i, r := range recs {
		out[i] = *r
	}
	return out
}

func createTestTopic(t testing.TB, l *Log, parts int32, o intentlog.TopicOptions) {
	t.Helper()
	if err := l.CreateTopic(context.Background(), testTopic, parts, o); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
}

// readAll reads partition p from start to end and checks offsets.
func readAll(t testing.TB, l *Log, p int32) []intentlog.Record {
	t.Helper()
	start, end, err := l.Bounds(context.Background(), testTopic, p)
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	return readFrom(t, l, p, start, end)
}

func readFrom(t testing.TB, l *Log, p int32, from, to int64) []intentlog.Record {
	t.Helper()
	r, err := l.NewReader(testTopic, p, from)
	if err != nil {
		t.Fatalf("NewReader(%d): %v", from, err)
	}
	defer r.Close()
	var out []intentlog.Record
	for next := from; next < to; {
		recs, err := r.Next(context.Background())
		if err != nil {
			t.Fatalf("partition %d: Next at %d: %v", p, next, err)
		}
		if len(recs) == 0 {
			t.Fatalf("partition %d: Next at %d returned no record (Position %d)", p, next, r.Position())
		}
		for _, rec := range recs {
			if rec.Offset != next {
				t.Fatalf("partition %d: got offset %d, want %d", p, rec.Offset, next)
			}
			out = append(out, rec)
			next++
		}
	}
	return out
}

// sameRecords compares key, value, offset and timestamp.
func sameRecords(t testing.TB, what string, got, want []intentlog.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || g.Offset != w.Offset || !g.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("%s: record %d = %q=%q@%d %v, want %q=%q@%d %v", what, i,
				g.Key, g.Value, g.Offset, g.Timestamp, w.Key, w.Value, w.Offset, w.Timestamp)
		}
	}
}

func segmentFiles(t testing.TB, dir string, p int, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, testTopic, fmt.Sprint(p), "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestRecoverTornTail(t *testing.T) {
	type damage func(t *testing.T, f *os.File, lastPos, size int64)
	cases := []struct {
		name      string
		damage    damage
		survivors int // records left of the 15
		cut       bool
		reason    string // logged
	}{
		{"garbage", func(t *testing.T, f *os.File, _, size int64) {
			junk := make([]byte, 100)
			for i := range junk {
				junk[i] = byte(rand.Uint32())
			}
			junk[0] = batchMagic
			noErr2[int](t)(f.WriteAt(junk, size))
		}, 15, false, ""},
		{"zeros", func(t *testing.T, f *os.File, _, size int64) {
			noErr2[int](t)(f.WriteAt(make([]byte, 4096), size))
		}, 15, false, "bad magic byte 0x00"},
		{"truncated", func(t *testing.T, f *os.File, lastPos, size int64) {
			noErr(t, f.Truncate(lastPos+(size-lastPos)/2))
		}, 10, true, "overruns the data end by"},
		{"truncated header", func(t *testing.T, f *os.File, lastPos, _ int64) {
			noErr(t, f.Truncate(lastPos+7))
		}, 10, true, "truncated batch header (7 bytes)"},
		{"truncated to a header", func(t *testing.T, f *os.File, lastPos, _ int64) {
			noErr(t, f.Truncate(lastPos+batchHeaderLen))
		}, 10, true, "overruns the data end by"},
		{"flipped", func(t *testing.T, f *os.File, lastPos, _ int64) {
			b := make([]byte, 1)
			noErr2[int](t)(f.ReadAt(b, lastPos+40))
			b[0] ^= 0x10
			noErr2[int](t)(f.WriteAt(b, lastPos+40))
		}, 10, true, "crc mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			want := appendBatch(t, l, "a", 5)
			want = append(want, appendBatch(t, l, "b", 5)...)
			path := segmentFiles(t, dir, 0, logExt)[0]
			lastPos := fileSize(t, path)
			want = append(want, appendBatch(t, l, "c", 5)...)
			size := fileSize(t, path)
			noErr(t, l.Close())

			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, f, lastPos, size)
			noErr(t, f.Close())
			damaged := fileSize(t, path)

			logs := &logBuffer{}
			l = openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			defer l.Close()
			wantSize := size
			if tc.cut {
				wantSize = lastPos
			}
			if !strings.Contains(logs.String(), "truncated the torn tail") || !strings.Contains(logs.String(), tc.reason) ||
				!strings.Contains(logs.String(), fmt.Sprintf(" position=%d bytes=%d offset=%d ", wantSize, damaged-wantSize, tc.survivors)) {
				t.Errorf("truncation at %d of %d bytes (offset %d, %q) not logged; log:\n%s", wantSize, damaged-wantSize, tc.survivors, tc.reason, logs)
			}
			if got := fileSize(t, path); got != wantSize {
				t.Errorf("file size after recovery %d, want %d", got, wantSize)
			}
			want = want[:tc.survivors]
			sameRecords(t, "after recovery", readAll(t, l, 0), want)
			more := appendBatch(t, l, "d", 3)
			if more[0].Offset != int64(tc.survivors) {
				t.Errorf("first append after recovery at offset %d, want %d", more[0].Offset, tc.survivors)
			}
			sameRecords(t, "after recovery and append", readAll(t, l, 0), append(want, more...))
		})
	}
}

// noErr fails the test when err is not nil.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// noErr2 is noErr for calls that also return a value.
func noErr2[T any](t testing.TB) func(T, error) {
	return func(_ T, err error) {
		t.Helper()
		noErr(t, err)
	}
}

// TestIndexRebuild: Open trusts a sound index of a sealed segment (no
// rebuild, no warning) and rebuilds every damaged one, byte for byte as the
// writer wrote it; a stale index of the active segment is removed; reads
// from anywhere and OffsetForTime work after either.
func TestIndexRebuild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := &logBuffer{}
	opts := Options{SegmentBytes: 1024, IndexIntervalBytes: 100, NoSync: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	var want []intentlog.Record
	for i := range 160 {
		want = append(want, appendBatch(t, l, fmt.Sprint(i), 1+i%4)...)
	}
	noErr(t, l.Close())
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings while appending:\n%s", logs)
	}
	idxs := segmentFiles(t, dir, 0, idxExt)
	orig := map[string][]byte{}
	for _, p := range idxs {
		b, err := os.ReadFile(p)
		noErr(t, err)
		if len(b) < 4*indexEntryLen {
			t.Fatalf("%s has %d bytes: too few index entries for the test", p, len(b))
		}
		orig[p] = b
	}
	checkReads := func(l *Log) {
		t.Helper()
		end := int64(len(want))
		for _, from := range []int64{0, 1, 7, 33, 90, 201, end - 1} {
			sameRecords(t, fmt.Sprintf("reading from %d", from), readFrom(t, l, 0, from, end), want[from:])
		}
		for i, r := range want {
			off, err := l.OffsetForTime(context.Background(), testTopic, 0, r.Timestamp)
			if first := firstAtOrAfter(want, r.Timestamp); err != nil || off != int64(first) {
				t.Fatalf("OffsetForTime(record %d) = %d, %v; want %d", i, off, err, first)
			}
		}
	}
	l = openLog(t, dir, opts)
	checkReads(l)
	noErr(t, l.Close())
	if strings.Contains(logs.String(), "rebuilt") || strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("sound indexes rebuilt, or warnings:\n%s", logs)
	}

	entry := func(b []byte, i int) []byte { return b[i*indexEntryLen : (i+1)*indexEntryLen] }
	damage := []struct {
		name string
		fn   func(b []byte) []byte // nil: remove the file
	}{
		{"missing", nil},
		{"torn", func(b []byte) []byte { return b[:7] }},
		{"short by one entry", func(b []byte) []byte { return b[:len(b)-indexEntryLen] }},
		{"positions out of order", func(b []byte) []byte {
			p1 := slices.Clone(entry(b, 1)[4:8])
			copy(entry(b, 1)[4:8], entry(b, 2)[4:8])
			copy(entry(b, 2)[4:8], p1)
			return b
		}},
		{"equal relative offsets", func(b []byte) []byte { copy(entry(b, 2)[:4], entry(b, 1)[:4]); return b }},
		{"equal positions", func(b []byte) []byte { copy(entry(b, 2)[4:8], entry(b, 1)[4:8]); return b }},
		{"only the last entry", func(b []byte) []byte { return entry(b, len(b)/indexEntryLen-1) }},
		{"first entry not the first batch", func(b []byte) []byte { return b[indexEntryLen:] }},
		{"last entry's time", func(b []byte) []byte { entry(b, len(b)/indexEntryLen-1)[15]++; return b }},
		{"last entry beyond the log", func(b []byte) []byte {
			binary.BigEndian.PutUint32(entry(b, len(b)/indexEntryLen-1)[4:], 1<<20)
			return b
		}},
	}
	if len(idxs) < len(damage) {
		t.Fatalf("%d sealed segments for %d kinds of damage", len(idxs), len(damage))
	}
	for i, d := range damage {
		if d.fn == nil {
			noErr(t, os.Remove(idxs[i]))
		} else {
			noErr(t, os.WriteFile(idxs[i], d.fn(slices.Clone(orig[idxs[i]])), 0o644))
		}
	}
	logsPath := segmentFiles(t, dir, 0, logExt)
	stale := strings.TrimSuffix(logsPath[len(logsPath)-1], logExt) + idxExt
	noErr(t, os.WriteFile(stale, orig[idxs[0]], 0o644))

	l = openLog(t, dir, opts)
	defer l.Close()
	for i, p := range idxs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, orig[p]) {
			what := "intact"
			if i < len(damage) {
				what = damage[i].name
			}
			t.Errorf("%s (%s) not rebuilt identically (err %v, %d bytes, want %d)", p, what, err, len(b), len(orig[p]))
		}
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale index of the active segment: %v, want it removed", err)
	}
	if n := strings.Count(logs.String(), "rebuilt segment index"); n != len(damage) || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("%d indexes rebuilt, want %d, and no warning:\n%s", n, len(damage), logs)
	}
	checkReads(l)
	appendBatch(t, l, "more", 2)
}

// TestIndexInterval: an index entry is due once a batch starts at least
// IndexIntervalBytes after the last indexed one, the same rule for the
// writer and for a rebuild.
func TestIndexInterval(t *testing.T) {
	t.Parallel()
	rec := func(i int) *intentlog.Record {
		return &intentlog.Record{Key: fmt.Appendf(nil, "key-%03d", i), Value: []byte("value")}
	}
	batch := int64(batchHeaderLen + len(appendRecord(nil, 0, rec(0))))
	for _, tc := range []struct {
		interval int64
		entries  int
	}{{batch, 10}, {batch + 1, 5}, {2 * batch, 5}, {2*batch + 1, 4}} {
		fsys := vfs.NewMem()
		opts := Options{FS: fsys, SegmentBytes: 10 * batch, IndexIntervalBytes: tc.interval}
		l := openLog(t, "/log", opts)
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		for i := range 11 { // the 11th rolls the segment
			noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{rec(i)}))
		}
		noErr(t, l.Close())
		path := segmentPath(craftedDir, 0, idxExt)
		written := readFile(t, fsys, path)
		if n := len(written) / indexEntryLen; n != tc.entries {
			t.Errorf("interval %d for %d-byte batches: %d index entries, want %d", tc.interval, batch, n, tc.entries)
		}
		noErr(t, fsys.Remove(path))
		l = openLog(t, "/log", opts)
		noErr(t, l.Close())
		if rebuilt := readFile(t, fsys, path); !bytes.Equal(rebuilt, written) {
			t.Errorf("interval %d: rebuilt index %x, written %x", tc.interval, rebuilt, written)
		}
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	for _, framing := range []bool{false, true} {
		t.Run(fmt.Sprintf("framing=%v", framing), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			opts := Options{SegmentBytes: 1024, IndexIntervalBytes: 128}
			l := openLog(t, dir, opts)
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			var want []intentlog.Record
			for i := range 40 {
				want = append(want, appendBatch(t, l, fmt.Sprint(i), 3)...)
			}
			noErr(t, l.Close())
			logs := segmentFiles(t, dir, 0, logExt)
			f, err := os.OpenFile(logs[0], os.O_RDWR, 0)
			noErr(t, err)
			// Find the second batch; damage its CRC-covered body or its length.
			hdr := make([]byte, batchHeaderLen)
			noErr2[int](t)(f.ReadAt(hdr, 0))
			second, _ := frameSize(hdr)
			at, b := second+40, []byte{0xff}
			if framing {
				at, b = second+1, []byte{0x7f, 0, 0, 0}
			}
			noErr2[int](t)(f.WriteAt(b, at))
			noErr(t, f.Close())

			l = openLog(t, dir, opts)
			defer l.Close()
			r, err := l.NewReader(testTopic, 0, 0)
			noErr(t, err)
			defer r.Close()
			recs, err := r.Next(context.Background())
			if err != nil || len(recs) != 3 {
				t.Fatalf("first Next = %d records, %v; want the 3 of the intact first batch", len(recs), err)
			}
			_, err = r.Next(context.Background())
			name := fmt.Sprintf("%s at position %d", logs[0], second)
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), name) {
				t.Fatalf("Next over the damage: %v; want ErrCorrupt naming %q", err, name)
			}
			// The rest of the log is readable around the damage.
			base := segmentBase(t, logs[1])
			sameRecords(t, "second segment on", readFrom(t, l, 0, base, int64(len(want))), want[base:])
		})
	}
}

func segmentBase(t testing.TB, path string) int64 {
	var base int64
	if _, err := fmt.Sscanf(filepath.Base(path), "%020d.log", &base); err != nil {
		t.Fatal(err)
	}
	return base
}
