package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
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
	}{
		{"garbage", func(t *testing.T, f *os.File, _, size int64) {
			junk := make([]byte, 100)
			for i := range junk {
				junk[i] = byte(rand.Uint32())
			}
			junk[0] = batchMagic
			noErr2[int](t)(f.WriteAt(junk, size))
		}, 15, false},
		{"zeros", func(t *testing.T, f *os.File, _, size int64) {
			noErr2[int](t)(f.WriteAt(make([]byte, 4096), size))
		}, 15, false},
		{"truncated", func(t *testing.T, f *os.File, lastPos, size int64) {
			noErr(t, f.Truncate(lastPos+(size-lastPos)/2))
		}, 10, true},
		{"truncated header", func(t *testing.T, f *os.File, lastPos, _ int64) {
			noErr(t, f.Truncate(lastPos+7))
		}, 10, true},
		{"flipped", func(t *testing.T, f *os.File, lastPos, _ int64) {
			b := make([]byte, 1)
			noErr2[int](t)(f.ReadAt(b, lastPos+40))
			b[0] ^= 0x10
			noErr2[int](t)(f.WriteAt(b, lastPos+40))
		}, 10, true},
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

			logs := &logBuffer{}
			l = openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			defer l.Close()
			if !strings.Contains(logs.String(), "truncated") {
				t.Errorf("no truncation logged; log:\n%s", logs)
			}
			wantSize := size
			if tc.cut {
				wantSize = lastPos
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

func TestIndexRebuild(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1024, IndexIntervalBytes: 100}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	var want []intentlog.Record
	for i := range 60 {
		want = append(want, appendBatch(t, l, fmt.Sprint(i), 1+i%4)...)
	}
	noErr(t, l.Close())
	idxs := segmentFiles(t, dir, 0, idxExt)
	if len(idxs) < 4 {
		t.Fatalf("only %d segments", len(idxs))
	}
	orig := map[string][]byte{}
	for _, p := range idxs {
		b, err := os.ReadFile(p)
		noErr(t, err)
		if len(b) < 2*indexEntryLen && p != idxs[len(idxs)-1] {
			t.Fatalf("%s has %d bytes: too few index entries for the test", p, len(b))
		}
		orig[p] = b
	}
	// Missing, torn, short by one entry, out of order, and the active one.
	noErr(t, os.Remove(idxs[0]))
	noErr(t, os.Truncate(idxs[1], 7))
	noErr(t, os.WriteFile(idxs[2], orig[idxs[2]][:len(orig[idxs[2]])-indexEntryLen], 0o644))
	swapped := slices.Clone(orig[idxs[3]])
	copy(swapped[4:8], orig[idxs[3]][indexEntryLen+4:indexEntryLen+8])
	noErr(t, os.WriteFile(idxs[3], swapped, 0o644))
	noErr(t, os.Remove(idxs[len(idxs)-1]))

	l = openLog(t, dir, opts)
	defer l.Close()
	for _, p := range idxs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, orig[p]) {
			t.Errorf("%s not rebuilt identically (err %v, %d bytes, want %d)", p, err, len(b), len(orig[p]))
		}
	}
	end := int64(len(want))
	for _, from := range []int64{0, 1, 7, 33, 90, end - 1} {
		if from < end {
			sameRecords(t, fmt.Sprintf("reading from %d", from), readFrom(t, l, 0, from, end), want[from:])
		}
	}
	for i, r := range want {
		off, err := l.OffsetForTime(context.Background(), testTopic, 0, r.Timestamp)
		first := slices.IndexFunc(want, func(x intentlog.Record) bool { return !x.Timestamp.Before(r.Timestamp) })
		if err != nil || off != int64(first) {
			t.Fatalf("OffsetForTime(record %d) = %d, %v; want %d", i, off, err, first)
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
