package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestWritersHeader: a header is the writer's when its base offset is the
// one expected and its record count is at least 1 and at most the number
// of smallest records (4 bytes each) the batch's size holds.
func TestWritersHeader(t *testing.T) {
	for _, c := range []struct {
		base       int64
		count      uint32
		size, next int64
		want       bool
	}{
		{7, 1, batchHeaderLen + minRecordLen, 7, true},
		{7, 1, batchHeaderLen + minRecordLen, 8, false},
		{7, 0, batchHeaderLen + minRecordLen, 7, false},
		{7, 2, batchHeaderLen + minRecordLen, 7, false},
		{7, 2, batchHeaderLen + 2*minRecordLen - 1, 7, false},
		{7, 2, batchHeaderLen + 2*minRecordLen, 7, true},
		{7, 25, batchHeaderLen + 100, 7, true},
		{7, 26, batchHeaderLen + 100, 7, false},
		{7, 26, batchHeaderLen + 103, 7, false},
		{7, 26, batchHeaderLen + 104, 7, true},
	} {
		hdr := make([]byte, batchHeaderLen)
		binary.BigEndian.PutUint64(hdr[9:], uint64(c.base))
		binary.BigEndian.PutUint32(hdr[17:], c.count)
		if got := writersHeader(hdr, c.size, c.next); got != c.want {
			t.Errorf("writersHeader(base %d, count %d, size %d, next %d) = %v, want %v", c.base, c.count, c.size, c.next, got, c.want)
		}
	}
}

// TestDataEnd: dataEnd answers the position after the last nonzero byte
// in [from, to), or from, whatever the bytes outside the range, for
// nonzero bytes at either end of a range and of its 64 KiB read windows.
func TestDataEnd(t *testing.T) {
	const win = 64 << 10
	data := make([]byte, 3*win+300)
	from, to := int64(100), int64(len(data)-100)
	for i := range from {
		data[i] = 0xaa // before the range
	}
	for i := to; i < int64(len(data)); i++ {
		data[i] = 0xbb // after it
	}
	cases := []struct {
		name     string
		from, to int64
		nonzero  []int64
		want     int64
	}{
		{"empty range", from, from, nil, from},
		{"zeros", from, to, nil, from},
		{"zeros, a short range", from, from + 10, nil, from},
		{"the first byte", from, to, []int64{from}, from + 1},
		{"the first byte, a short range", from, from + 10, []int64{from}, from + 1},
		{"the last byte", from, to, []int64{to - 1}, to},
		{"the last byte of the window before the last", from, to, []int64{from, to - win - 1}, to - win},
		{"the first byte of the last window", from, to, []int64{from, to - win}, to - win + 1},
		{"the middle", from, to, []int64{from + 5, from + win + 7}, from + win + 8},
		{"a range of one window", to - win, to, []int64{to - win}, to - win + 1},
	}
	for _, c := range cases {
		d := bytes.Clone(data)
		for _, i := range c.nonzero {
			d[i] = 1
		}
		if got, err := dataEnd(bytes.NewReader(d), c.from, c.to); err != nil || got != c.want {
			t.Errorf("%s: dataEnd(%d, %d) = %d, %v; want %d", c.name, c.from, c.to, got, err, c.want)
		}
	}
	if _, err := dataEnd(errReader{}, 0, 10); !errors.Is(err, syscall.EIO) {
		t.Errorf("dataEnd over a failing reader: %v, want EIO", err)
	}
}

// sparseReader reads size bytes, zeros but for b at position at.
type sparseReader struct {
	size, at int64
	b        []byte
}

func (s sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	clear(p[:n])
	if lo, hi := max(off, s.at), min(off+int64(n), s.at+int64(len(s.b))); lo < hi {
		copy(p[lo-off:hi-off], s.b[lo-s.at:hi-s.at])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// failFrom is r failing every read at or past from.
type failFrom struct {
	r    io.ReaderAt
	from int64
}

func (f failFrom) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.from {
		return 0, syscall.EIO
	}
	return f.r.ReadAt(p, off)
}

// TestWholeToEnd: wholeToEnd says whether the CRC at pos+5 matches the
// bytes [pos+9, limit), for a bad batch from the smallest a batch can be
// (33 bytes) to the largest (1 GiB), across the 1 MiB read chunks, at
// position 0 and further in; a shorter or longer extent is no batch, even
// with a matching CRC.
func TestWholeToEnd(t *testing.T) {
	// zeroBatch returns the CRC field of a batch of size bytes whose bytes
	// after the CRC are zeros.
	zeroBatch := func(size int64) []byte {
		z := make([]byte, readChunk)
		var c uint32
		for i := int64(9); i < size; i += readChunk {
			c = crc32.Update(c, castagnoli, z[:min(readChunk, size-i)])
		}
		return binary.BigEndian.AppendUint32(nil, c)
	}
	cases := []struct {
		name           string
		pos, size, end int64 // the batch at pos, its CRC of size bytes, the file's end
		flip           int64 // a byte of the batch changed after its CRC was taken (0: none)
		want           bool
	}{
		{"smallest batch", 0, 33, 33, 0, true},
		{"smallest batch, further in", 100, 33, 133, 0, true},
		{"smallest batch, its last byte changed", 100, 33, 133, 32, false},
		{"a byte short of the smallest", 0, 32, 32, 0, false},
		{"a byte short of the smallest, further in", 100, 32, 132, 0, false},
		{"a header and nothing after it, further in", 200, 29, 229, 0, false},
		{"a read chunk after the CRC", 10, 9 + readChunk, 19 + readChunk, 0, true},
		{"a read chunk and a byte", 10, 10 + readChunk, 20 + readChunk, 0, true},
		{"a read chunk and a byte, that byte changed", 10, 10 + readChunk, 20 + readChunk, 9 + readChunk, false},
		{"a read chunk and a byte, the chunk's last byte changed", 10, 10 + readChunk, 20 + readChunk, 8 + readChunk, false},
		{"largest batch", 0, maxFrameBytes, maxFrameBytes, 0, true},
		{"largest batch, further in", maxFrameBytes, maxFrameBytes, 2 * maxFrameBytes, 0, true},
		{"a byte more than the largest", 0, maxFrameBytes + 1, maxFrameBytes + 1, 0, false},
	}
	for _, c := range cases {
		crc := zeroBatch(c.size)
		r := sparseReader{size: c.end, at: c.pos + 5, b: crc}
		if c.flip > 0 {
			r.b = append(append(crc, make([]byte, c.flip-9)...), 1) // the byte at pos+flip
		}
		got, err := wholeToEnd(r, c.pos, c.end)
		if err != nil || got != c.want {
			t.Errorf("%s: wholeToEnd(%d, %d) = %v, %v; want %v", c.name, c.pos, c.end, got, err, c.want)
		}
	}
	for _, from := range []int64{0, 9} {
		r := failFrom{r: sparseReader{size: 40, at: 5, b: zeroBatch(40)}, from: from}
		if _, err := wholeToEnd(r, 0, 40); !errors.Is(err, syscall.EIO) {
			t.Errorf("wholeToEnd over a reader failing from %d: %v, want EIO", from, err)
		}
	}
}

// TestHeaderDamaged: headerDamaged says whether the bad batch at pos has
// records whole up to a declared end inside the data while its base
// offset or count is not the writer's; a crash leaves neither a header
// the writer did not write nor, after a header cut short, anything but
// zeros.
func TestHeaderDamaged(t *testing.T) {
	ts := time.UnixMicro(1000)
	const next = 3
	prefix := encodeBatch(nil, 0, 1000, []intentlog.Record{{Key: []byte("a"), Value: []byte("b"), Timestamp: ts}})
	pos := int64(len(prefix))
	recs := []intentlog.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: ts}, {Key: []byte("k2"), Timestamp: ts}}
	good := encodeBatch(nil, next, 1000, recs)
	after := encodeBatch(nil, next+2, 1000, recs)
	// Records of four 0 bytes, after a header whose first timestamp
	// (1<<20 µs) ends in zero bytes.
	empty := intentlog.Record{Key: []byte{}, Value: []byte{}, Timestamp: time.UnixMicro(1 << 20)}
	zeros := encodeBatch(nil, next, 1<<20, []intentlog.Record{empty, empty, empty})
	if !bytes.Equal(zeros[batchHeaderLen-2:], make([]byte, len(zeros)-batchHeaderLen+2)) {
		t.Fatalf("not zeros: % x", zeros[batchHeaderLen-2:])
	}
	base := func(b []byte) []byte { b = bytes.Clone(b); b[16] ^= 0x40; return b }
	count := func(b []byte) []byte { b = bytes.Clone(b); binary.BigEndian.PutUint32(b[17:], 0); return b }
	grow := func(b []byte, n int) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b[1:], binary.BigEndian.Uint32(b[1:])+uint32(n))
		return b
	}
	cases := []struct {
		name string
		bad  []byte
		past []byte // bytes after limit
		want bool
	}{
		{"base damaged", base(good), nil, true},
		{"count damaged", count(good), nil, true},
		{"base damaged, a batch after it", append(base(good), after...), nil, true},
		{"base and magic damaged", append([]byte{0}, base(good)[1:]...), nil, true},
		{"the writer's header, a record damaged", func() []byte { b := bytes.Clone(good); b[batchHeaderLen+2] = 'x'; return b }(), nil, false},
		{"the writer's header, crc damaged", func() []byte { b := bytes.Clone(good); b[5] ^= 1; return b }(), nil, false},
		{"base damaged, a record damaged", func() []byte { b := base(good); b[batchHeaderLen] = 1; return b }(), nil, false},
		{"base damaged, declared end past the file", grow(base(good), 8), nil, false},
		{"base damaged, declared end inside the records", grow(base(good), -1), nil, false},
		{"base damaged, records of zeros", base(zeros), nil, false},
		{"base damaged, records of zeros, a batch after it", append(base(zeros), after...), nil, false},
		{"a header alone", base(good)[:batchHeaderLen], nil, false},
		{"a header cut short", base(good)[:batchHeaderLen-9], nil, false},
		{"base damaged, declared end past limit, a record after it", grow(base(good), 4), []byte{0, 0, 0, 0}, false},
	}
	for _, c := range cases {
		data := append(bytes.Clone(prefix), c.bad...)
		got, err := headerDamaged(bytes.NewReader(append(data, c.past...)), pos, int64(len(data)), next)
		if err != nil || got != c.want {
			t.Errorf("%s: headerDamaged = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, from := range []int64{0, pos + batchHeaderLen} {
		data := append(bytes.Clone(prefix), base(good)...)
		r := failFrom{r: bytes.NewReader(data), from: from}
		if _, err := headerDamaged(r, pos, int64(len(data)), next); !errors.Is(err, syscall.EIO) {
			t.Errorf("headerDamaged over a reader failing from %d: %v, want EIO", from, err)
		}
	}
}

// TestWalkerRecords: records walks records as the writer encodes them
// from pos to end, through a 64 KiB window: whole records to end; a
// record (or one of its varints) cut by end, which is the data's end when
// cut; a batch's magic byte where a record would start; fields no writer
// writes (a longer varint than the shortest, a length over any field's);
// and records and varints across the window's edge. It reads the bytes
// about once.
func TestWalkerRecords(t *testing.T) {
	const win = 64 << 10
	rec := func(r intentlog.Record) []byte { return appendRecord(nil, 0, &r) }
	whole := bytes.Join([][]byte{
		rec(intentlog.Record{Key: []byte("k"), Value: []byte("v")}),
		rec(intentlog.Record{}), // nil key and value
		rec(intentlog.Record{Key: []byte{}, Value: bytes.Repeat([]byte("v"), 200)}),
		rec(intentlog.Record{Key: []byte("h"), Headers: []intentlog.Header{{Key: "", Value: nil}, {Key: "a", Value: []byte{}},
			{Key: "b", Value: []byte("xyz")}}}), // ends in a header's value
	}, nil)
	keyLen := func(n int64, rest ...byte) []byte { // a record's delta and key length n
		return append(binary.AppendVarint([]byte{0}, n), rest...)
	}
	// A record whose key's length varint (two bytes) starts at the last
	// byte of the first window: the record before it fills the window.
	first := rec(intentlog.Record{Key: []byte("k"), Value: make([]byte, win-10)})
	first = rec(intentlog.Record{Key: []byte("k"), Value: make([]byte, win-10+(win-2-len(first)))})
	straddle := append(bytes.Clone(first), rec(intentlog.Record{Key: bytes.Repeat([]byte("k"), 100), Value: []byte("v")})...)
	if len(first) != win-2 || straddle[win-1]&0x80 == 0 {
		t.Fatalf("first record of %d bytes, key length % x", len(first), straddle[win-1:win+1])
	}
	cases := []struct {
		name      string
		data      []byte // from position 7 on
		end       int    // relative to the data's start; -1: its end
		cut       bool
		p         int // relative to the data's start; -1: none
		ok, short bool
	}{
		{"whole records", whole, -1, false, -1, true, false},
		{"whole records, cut", whole, -1, true, -1, true, false},
		{"no records", nil, -1, false, -1, true, false},
		{"end inside the last header's value", whole, len(whole) - 1, false, -1, false, true},
		{"end inside the last header's value, cut", whole, len(whole) - 1, true, -1, true, true},
		{"end inside a varint, cut, zeros after it", append(keyLen(200), make([]byte, 20)...), 2, true, -1, true, true},
		{"end inside a varint, cut, a byte completing it after it", keyLen(200, 'k'), 2, true, -1, true, true},
		{"a batch's magic byte after a record", append(bytes.Clone(whole), batchMagic, 0, 0), -1, false, len(whole), false, false},
		{"a batch's magic byte at the first record", append([]byte{batchMagic}, whole...), -1, false, -1, false, false},
		{"a negative header count", append([]byte{0, 1, 1, 1}, whole...), -1, false, -1, false, false},
		{"a delta not 0", append([]byte{2}, whole[1:]...), -1, true, -1, false, false},
		{"a length varint longer than the shortest", []byte{0, 0x80, 0x00, 0, 0}, -1, true, -1, false, false},
		{"a length varint of 11 bytes", append(append([]byte{0}, bytes.Repeat([]byte{0x80}, 10)...), 1), -1, true, -1, false, false},
		{"a key of the largest length, cut", keyLen(maxFrameBytes, 'k', 'k'), -1, true, -1, true, true},
		{"a key of the largest length, not cut", keyLen(maxFrameBytes, 'k', 'k'), -1, false, -1, false, true},
		{"a key over the largest length, cut", keyLen(maxFrameBytes+1, 'k', 'k'), -1, true, -1, false, false},
		{"a header count of the longest varint, cut", append(keyLen(-1, 1), binary.AppendVarint(nil, math.MaxInt64)...), -1, true, -1, true, true},
		{"a varint across the window's edge", straddle, -1, false, -1, true, false},
		{"a varint across the window's edge, end inside it", straddle, win, false, -1, false, true},
	}
	const from = 7
	for _, c := range cases {
		data := append(bytes.Repeat([]byte{batchMagic}, from), c.data...)
		data = append(data, 0xff, 0xff, 0xff) // after end
		end := len(data) - 3
		if c.end >= 0 {
			end = from + c.end
		}
		r := &countingReader{r: bytes.NewReader(data)}
		w := walker{r: r, pos: from, end: int64(end), buf: make([]byte, win)}
		p, ok, err := w.records(c.cut)
		wantP := int64(-1)
		if c.p >= 0 {
			wantP = int64(from + c.p)
		}
		if err != nil || p != wantP || ok != c.ok || w.short != c.short {
			t.Errorf("%s: records = %d, %v, %v, short %v; want %d, %v, short %v", c.name, p, ok, err, w.short, wantP, c.ok, c.short)
		}
		if n := r.bytes.Load(); n > int64(end-from)+2*win {
			t.Errorf("%s: read %d bytes of %d", c.name, n, end-from)
		}
	}

	// Many small records, across windows: read about once.
	var many []byte
	for len(many) < 4*win {
		many = append(many, rec(intentlog.Record{Key: []byte("key"), Value: []byte("value")})...)
	}
	r := &countingReader{r: bytes.NewReader(many)}
	w := walker{r: r, pos: 0, end: int64(len(many)), buf: make([]byte, win)}
	if p, ok, err := w.records(false); p != -1 || !ok || err != nil {
		t.Fatalf("records over %d bytes of records = %d, %v, %v", len(many), p, ok, err)
	}
	if n := r.bytes.Load(); n > 2*int64(len(many)) {
		t.Errorf("records read %d bytes (%d calls) of %d", n, r.calls.Load(), len(many))
	}
	w = walker{r: failFrom{r: bytes.NewReader(many), from: win + 100}, pos: 0, end: int64(len(many)), buf: make([]byte, win)}
	if _, _, err := w.records(false); !errors.Is(err, syscall.EIO) {
		t.Errorf("records over a reader failing past the first window: %v, want EIO", err)
	}
}
