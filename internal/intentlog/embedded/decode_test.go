package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// reframe sets the length and CRC fields of batch b after its bytes changed.
func reframe(b []byte) []byte {
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-5))
	binary.BigEndian.PutUint32(b[5:], crc32.Checksum(b[9:], castagnoli))
	return b
}

// rawBatch is a batch of count records whose encoded bytes are body, with a
// valid length and CRC.
func rawBatch(base int64, count int, body ...byte) []byte {
	b := append(beginBatch(nil), body...)
	finishBatch(b, base, count, 1000)
	return b
}

// varints appends each value as a zig-zag varint.
func varints(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.AppendVarint(b, v)
	}
	return b
}

// TestDecodeBatch: batches at the edges of the format (the smallest
// possible, empty versus nil, two-byte lengths, a last field that ends the
// batch exactly, timestamps on both sides of the first) decode to exactly
// the records encoded, and verifyBatch agrees and finds the newest
// timestamp.
func TestDecodeBatch(t *testing.T) {
	ts := time.UnixMicro(1_700_000_000_000_000)
	rec := func(k, v []byte, h ...intentlog.Header) intentlog.Record {
		return intentlog.Record{Key: k, Value: v, Headers: h, Timestamp: ts}
	}
	cases := []struct {
		name string
		recs []intentlog.Record
		size int // encoded size, when it matters
	}{
		{"smallest batch: nil key and value, no headers", []intentlog.Record{rec(nil, nil)}, batchHeaderLen + minRecordLen},
		{"empty key and value are not nil", []intentlog.Record{rec([]byte{}, []byte{})}, 0},
		{"64-byte key and value: two-byte lengths", []intentlog.Record{rec(bytes.Repeat([]byte("k"), 64), bytes.Repeat([]byte("v"), 64))}, 0},
		{"a last header of two bytes ends the batch", []intentlog.Record{rec([]byte("k"), []byte("v"), intentlog.Header{})}, 0},
		{"an empty header value ends the batch", []intentlog.Record{rec(nil, nil, intentlog.Header{Key: "e", Value: []byte{}})}, 0},
		{"timestamps after and before the first", []intentlog.Record{
			rec([]byte("a"), nil), {Key: []byte("b"), Timestamp: ts.Add(time.Second)}, {Key: []byte("c"), Timestamp: ts.Add(-time.Second)}}, 0},
		{"headers: the same keys, other keys, more, none, fewer", []intentlog.Record{
			rec([]byte("a"), nil, intentlog.Header{Key: "v", Value: []byte("1")}, intentlog.Header{Key: "op", Value: []byte("u")}),
			rec([]byte("b"), nil, intentlog.Header{Key: "v", Value: []byte("2")}, intentlog.Header{Key: "op", Value: []byte("d")}),
			rec([]byte("c"), nil, intentlog.Header{Key: "v", Value: []byte("3")}, intentlog.Header{Key: "id", Value: nil}, intentlog.Header{Key: "x", Value: []byte{}}),
			rec([]byte("d"), nil),
			rec([]byte("e"), nil, intentlog.Header{Key: "w", Value: []byte("4")}),
			rec([]byte("f"), nil, intentlog.Header{Key: "v", Value: []byte("5")}, intentlog.Header{Key: "id", Value: []byte("6")}),
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := encodeBatch(nil, 7, ts.UnixMicro(), tc.recs)
			if tc.size != 0 && len(b) != tc.size {
				t.Fatalf("encoded in %d bytes, want %d", len(b), tc.size)
			}
			h, got, err := decodeBatch(nil, b)
			noErr(t, err)
			if h.base != 7 || h.count != len(tc.recs) || h.size != int64(len(b)) || h.next() != 7+int64(len(tc.recs)) {
				t.Fatalf("header %+v for %d records at 7 in %d bytes", h, len(tc.recs), len(b))
			}
			newest := ts
			for i, w := range tc.recs {
				g := got[i]
				if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) ||
					(g.Value == nil) != (w.Value == nil) || !bytes.Equal(g.Value, w.Value) ||
					g.Offset != 7+int64(i) || !g.Timestamp.Equal(w.Timestamp) {
					t.Fatalf("record %d = %#v, want %#v", i, g, w)
				}
				if (g.Headers == nil) != (len(w.Headers) == 0) || len(g.Headers) != len(w.Headers) || cap(g.Headers) != len(w.Headers) {
					t.Fatalf("record %d headers %#v (room for %d), want %#v (nil when there are none; no room to grow into the next record's)", i, g.Headers, cap(g.Headers), w.Headers)
				}
				for j := range w.Headers {
					if g.Headers[j].Key != w.Headers[j].Key || (g.Headers[j].Value == nil) != (w.Headers[j].Value == nil) ||
						!bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
						t.Fatalf("record %d header %d = %#v, want %#v", i, j, g.Headers[j], w.Headers[j])
					}
				}
				if w.Timestamp.After(newest) {
					newest = w.Timestamp
				}
			}
			// Decoded after other records, into room that held stale ones:
			// those stay, and the new ones carry nothing of the old.
			stale := intentlog.Record{Key: []byte("old"), RouteKey: []byte("route"), Partition: 3, Headers: []intentlog.Header{{Key: "h"}}}
			dst := make([]intentlog.Record, 1, 1+len(tc.recs))
			dst[0] = stale
			for range tc.recs {
				dst = append(dst, stale)
			}
			_, again, err := decodeBatch(dst[:1], b)
			noErr(t, err)
			if len(again) != 1+len(got) || string(again[0].Key) != "old" {
				t.Fatalf("decoded after a record: %d records, the first %q", len(again), again[0].Key)
			}
			for i, g := range again[1:] {
				if g.RouteKey != nil || g.Partition != 0 || g.Offset != got[i].Offset || len(g.Headers) != len(got[i].Headers) {
					t.Fatalf("record %d decoded into stale room: %#v, want %#v", i, g, got[i])
				}
			}
			vh, maxTS, err := verifyBatch(b)
			noErr(t, err)
			if vh != h || maxTS != newest.UnixMicro() {
				t.Fatalf("verifyBatch: %+v, newest %d; want %+v, %d", vh, maxTS, h, newest.UnixMicro())
			}
		})
	}
}

// TestDecodeBatchRejects: each check of the decoder rejects what it is
// for, with ErrCorrupt and a message that says which check failed (an
// operator reads it in the error that names the damaged file).
func TestDecodeBatchRejects(t *testing.T) {
	minimal := rawBatch(0, 1, varints(0, -1, -1, 0)...)
	header29 := rawBatch(0, 0)
	withExtra := append(bytes.Clone(minimal), 0)
	twoRecords := bytes.Clone(minimal)
	binary.BigEndian.PutUint32(twoRecords[17:], 2)
	// A whole first record (key "abcd"), then a second cut after one byte.
	cutShort := append(append(varints(0, 4), "abcd"...), varints(-1, 0, 0)...)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"shorter than a header", minimal[:batchHeaderLen-1], "batch of 28 bytes shorter than its header"},
		{"a header and no record", header29, "batch length 24 too small"},
		{"bad magic", append([]byte{0}, minimal[1:]...), "bad magic byte 0x00"},
		{"length field short of the bytes", withExtra, "batch length field says 33 bytes, have 34"},
		{"negative base offset", rawBatch(-1, 1, varints(0, -1, -1, 0)...), "negative base offset -1"},
		{"no records", rawBatch(0, 0, varints(0, -1, -1, 0)...), "record count 0 impossible"},
		{"more records than bytes allow", reframe(twoRecords), "record count 2 impossible in 33 bytes"},
		{"crc", append(bytes.Clone(minimal[:len(minimal)-1]), 1), "crc mismatch"},
		{"trailing bytes", reframe(bytes.Clone(withExtra)), "1 trailing bytes after the last record"},
		{"record cut short", rawBatch(0, 2, cutShort...), "bad varint"},
		{"non-minimal varint", rawBatch(0, 1, 0x80, 0x00, 1, 1, 0), "non-minimal varint"},
		{"length beyond the bytes", rawBatch(0, 1, varints(0, 5, -1, 0)...), "length 5 out of range (2 bytes left)"},
		{"negative header count", rawBatch(0, 1, varints(0, -1, -1, -1)...), "header count -1 impossible"},
		{"header count beyond the bytes", rawBatch(0, 1, varints(0, -1, -1, 2, 0, -1)...), "header count 2 impossible in 2 bytes"},
		{"huge header count", rawBatch(0, 1, varints(0, -1, -1, 1<<40)...), "header count 1099511627776 impossible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeBatch(nil, tc.b)
			_, _, verr := verifyBatch(tc.b)
			for _, e := range []error{err, verr} {
				if !errors.Is(e, intentlog.ErrCorrupt) || !strings.Contains(e.Error(), tc.want) {
					t.Fatalf("decode: %v; verify: %v; want ErrCorrupt saying %q", err, verr, tc.want)
				}
			}
		})
	}
}

// TestFrameSize: the smallest frame is a header and one smallest record.
func TestFrameSize(t *testing.T) {
	hdr := make([]byte, batchHeaderLen)
	hdr[0] = batchMagic
	for n, want := range map[uint32]string{27: "batch length 27 too small", 28: "", 1 << 20: ""} {
		binary.BigEndian.PutUint32(hdr[1:], n)
		size, err := frameSize(hdr)
		if want != "" {
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), want) {
				t.Errorf("length %d: %d, %v; want %q", n, size, err, want)
			}
		} else if err != nil || size != 5+int64(n) {
			t.Errorf("length %d: %d, %v; want %d", n, size, err, 5+n)
		}
	}
}

func TestVarintLen(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, 1 << 40, math.MaxInt64, math.MinInt64} {
		if got, want := varintLen(v), len(binary.AppendVarint(nil, v)); got != want {
			t.Errorf("varintLen(%d) = %d, want %d", v, got, want)
		}
	}
}

// countingReader counts ReadAt calls and the bytes they read.
type countingReader struct {
	r            io.ReaderAt
	calls, bytes atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.calls.Add(1)
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	return n, err
}

// testFrames returns n batches of per records each, back to back, and
// their positions.
func testFrames(n, per int) ([]byte, []int64) {
	var data []byte
	var pos []int64
	for b := range n {
		pos = append(pos, int64(len(data)))
		var recs []intentlog.Record
		for i := range per {
			recs = append(recs, intentlog.Record{Key: fmt.Appendf(nil, "key-%d-%d", b, i),
				Value: fmt.Appendf(nil, "value of %d-%d", b, i), Timestamp: time.UnixMicro(1000)})
		}
		data = encodeBatch(data, int64(per*b), 1000, recs)
	}
	return data, pos
}

// TestFrameReader: frames come back whole at their positions; a frame cut
// by the data end is an error that says by how much; and the data is read
// in chunks (one ReadAt for a file smaller than a chunk), into one reused
// buffer when reuse is set.
func TestFrameReader(t *testing.T) {
	data, pos := testFrames(200, 1)
	for _, reuse := range []bool{false, true} {
		cr := &countingReader{r: bytes.NewReader(data)}
		fr := frameReader{r: cr, limit: int64(len(data)), chunk: readChunk, reuse: reuse}
		for i := 0; ; i++ {
			frame, at, err := fr.next()
			if err == io.EOF && i == len(pos) {
				break
			}
			end := int64(len(data))
			if i+1 < len(pos) {
				end = pos[i+1]
			}
			if err != nil || at != pos[i] || !bytes.Equal(frame, data[pos[i]:end]) {
				t.Fatalf("reuse=%v: frame %d at %d (%d bytes), %v; want position %d", reuse, i, at, len(frame), err, pos[i])
			}
		}
		if n := cr.calls.Load(); n != 1 {
			t.Errorf("reuse=%v: %d ReadAt calls for %d bytes, want 1 (one chunk)", reuse, n, len(data))
		}
	}
	allocs := testing.AllocsPerRun(5, func() {
		fr := frameReader{r: bytes.NewReader(data), limit: int64(len(data)), chunk: 256, reuse: true}
		for {
			if _, _, err := fr.next(); err != nil {
				break
			}
		}
	})
	if allocs > 3 {
		t.Errorf("a reusing scan of %d bytes in 256-byte chunks made %.0f allocations, want at most 3", len(data), allocs)
	}

	cut := []struct {
		limit int64
		want  string
	}{
		{pos[1] + 7, "truncated batch header (7 bytes)"},
		{pos[1] + batchHeaderLen, fmt.Sprintf("overruns the data end by %d", pos[2]-pos[1]-batchHeaderLen)},
		{pos[2] - 1, fmt.Sprintf("batch of %d bytes overruns the data end by 1", pos[2]-pos[1])},
		{int64(len(data)) + 100, fmt.Sprintf("file ends before %d", len(data)+100)},
	}
	for _, c := range cut {
		fr := frameReader{r: bytes.NewReader(data), pos: pos[1], limit: c.limit, chunk: readChunk}
		if c.limit > int64(len(data)) {
			fr.pos = pos[len(pos)-1]
		}
		_, at, err := fr.next()
		if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), c.want) || at != fr.pos {
			t.Errorf("limit %d: %v at %d; want ErrCorrupt saying %q at %d", c.limit, err, at, c.want, fr.pos)
		}
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, syscall.EIO }

// TestFindBatch: findBatch returns the first whole, valid batch with a base
// offset of at least minBase that starts at or after from, skipping bytes
// that only look like a batch; it reports a read error instead of "none".
func TestFindBatch(t *testing.T) {
	one := func(base int64, key string) []byte {
		return encodeBatch(nil, base, 1000, []intentlog.Record{{Key: []byte(key), Timestamp: time.UnixMicro(1000)}})
	}
	b10, b13 := one(10, "ten"), one(13, "thirteen")
	magic := string([]byte{batchMagic})
	junk := []byte("x" + magic + "xx" + magic + magic + "xxx")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name     string
		r        io.ReaderAt
		data     []byte
		from     int64
		minBase  int64
		at, base int64 // -1: none found
		err      bool
	}{
		{"a batch right at from", nil, cat(junk, b10), int64(len(junk)), 10, int64(len(junk)), 10, false},
		{"after bytes with magic bytes", nil, cat(junk, b10), 0, 0, int64(len(junk)), 10, false},
		{"after a torn copy of the same batch", nil, cat(b10[:20], b10), 0, 0, 20, 10, false},
		{"base equal to minBase", nil, cat(b10, b13), 0, 10, 0, 10, false},
		{"base below minBase skipped", nil, cat(b10, b13), 0, 11, int64(len(b10)), 13, false},
		{"a magic byte too near the end", nil, cat(b10[1:], []byte(magic+"xxxxxxxxxx")), 0, 0, -1, 0, false},
		{"a frame overrunning the end", nil, b10[:len(b10)-1], 0, 0, -1, 0, false},
		{"nothing", nil, []byte("no batch here"), 0, 0, -1, 0, false},
		{"read error", errReader{}, make([]byte, 100), 0, 0, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			if r == nil {
				r = bytes.NewReader(tc.data)
			}
			at, h, ok, err := findBatch(r, tc.from, int64(len(tc.data)), tc.minBase)
			switch {
			case tc.err:
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("findBatch over a failing reader: %v, want EIO", err)
				}
			case err != nil:
				t.Fatalf("findBatch: %v", err)
			case tc.at < 0 && ok:
				t.Fatalf("found a batch (base %d) at %d, want none", h.base, at)
			case tc.at >= 0 && (!ok || at != tc.at || h.base != tc.base):
				t.Fatalf("findBatch = %d, base %d, %v; want %d, base %d", at, h.base, ok, tc.at, tc.base)
			}
		})
	}
	// A candidate a header long from the end cannot be a batch, but a read
	// error there is still an error, not "none".
	if _, ok, err := validBatchAt(errReader{}, 0, batchHeaderLen, 0); ok || !errors.Is(err, syscall.EIO) {
		t.Fatalf("validBatchAt over a failing reader: %v, %v; want EIO", ok, err)
	}
}

// TestIndexLookup: lookupOffset finds the last indexed batch whose base is
// at most the offset; lookupTime the last one whose time is below the
// asked time (batches of an equal time before it may hold the first
// record at that time).
func TestIndexLookup(t *testing.T) {
	entries := []indexEntry{{0, 0, 10}, {5, 100, 20}, {9, 200, 20}, {14, 300, 30}}
	for rel, want := range map[uint32]int64{0: 0, 4: 0, 5: 100, 8: 100, 9: 200, 13: 200, 14: 300, 1000: 300} {
		if got := lookupOffset(entries, rel); got != want {
			t.Errorf("lookupOffset(%d) = %d, want %d", rel, got, want)
		}
	}
	for ts, want := range map[int64]int64{5: 0, 10: 0, 11: 0, 20: 0, 21: 200, 30: 200, 31: 300} {
		if got := lookupTime(entries, ts); got != want {
			t.Errorf("lookupTime(%d) = %d, want %d", ts, got, want)
		}
	}
	if lookupOffset(nil, 3) != 0 || lookupTime(nil, 3) != 0 {
		t.Error("lookups in an empty index must start at 0")
	}
}

// TestLostCovers: a gap is accepted only when one recorded range holds
// all of it; a range to -1 (damage to the end of the last segment, after
// which the log went on at its From) holds none.
func TestLostCovers(t *testing.T) {
	ls := lostRanges{{From: 0, To: 1}, {From: 5, To: 10}, {From: 20, To: -1}}
	for _, c := range []struct {
		from, to int64
		want     bool
	}{
		{0, 1, true}, {5, 10, true}, {6, 9, true}, {4, 10, false}, {5, 11, false},
		{1, 2, false}, {10, 12, false}, {20, 25, false}, {30, 1 << 40, false}, {19, 25, false},
	} {
		if got := ls.covers(c.from, c.to); got != c.want {
			t.Errorf("covers(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
