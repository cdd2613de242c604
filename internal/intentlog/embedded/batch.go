package embedded

// Record batch framing (version 1). One batch is everything one group-commit
// round wrote to a partition. Fixed-width integers are big-endian.
//
//	offset  size  field
//	0       1     magic: 0x57 ('W'), framing version 1
//	1       4     length (uint32): number of bytes after this field, i.e.
//	              the whole batch is 5+length bytes
//	5       4     crc (uint32): CRC-32C (Castagnoli) of bytes [9, 5+length),
//	              everything after the crc field
//	9       8     base offset (int64): offset of the first record, >= 0
//	17      4     record count (uint32): >= 1
//	21      8     first timestamp (int64): unix microseconds
//	29      ...   record count records, back to back, ending exactly at
//	              5+length
//
// Each record. A varint is a zig-zag signed varint (encoding/binary
// AppendVarint) in its shortest form; the decoder rejects longer forms so
// that decoding and re-encoding is the identity.
//
//	varint  timestamp delta: record time minus first timestamp, in µs
//	varint  key length, -1 for a nil key
//	bytes   key
//	varint  value length, -1 for a nil value (tombstone)
//	bytes   value
//	varint  header count, >= 0
//	per header:
//	  varint  header key length, >= 0
//	  bytes   header key
//	  varint  header value length, -1 for a nil value
//	  bytes   header value
//
// The writer stamps all records of a batch with the batch's time, so the
// deltas it writes are always 0; the decoder accepts any delta.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

const (
	batchMagic     = 0x57
	batchHeaderLen = 29
	// minRecordLen is the smallest encoded record: four one-byte varints.
	minRecordLen = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// corrupt returns an error wrapping intentlog.ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", intentlog.ErrCorrupt, fmt.Sprintf(format, args...))
}

// appendRecord appends the encoding of r, with timestamp delta tsDelta.
func appendRecord(dst []byte, tsDelta int64, r *intentlog.Record) []byte {
	dst = binary.AppendVarint(dst, tsDelta)
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

// recordLen is the length appendRecord appends for r.
func recordLen(tsDelta int64, r *intentlog.Record) int {
	n := intentlog.VarintLen(tsDelta) + nullableLen(r.Key) + nullableLen(r.Value) + intentlog.VarintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += intentlog.VarintLen(int64(len(h.Key))) + len(h.Key) + nullableLen(h.Value)
	}
	return n
}

// nullableLen is the length appendNullable appends for b.
func nullableLen(b []byte) int {
	if b == nil {
		return intentlog.VarintLen(-1)
	}
	return intentlog.VarintLen(int64(len(b))) + len(b)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// beginBatch appends room for a batch header; finishBatch fills it in.
func beginBatch(dst []byte) []byte {
	var hdr [batchHeaderLen]byte
	return append(dst, hdr[:]...)
}

// finishBatch fills in the header of the batch b (header plus records).
func finishBatch(b []byte, base int64, count int, firstTS int64) {
	b[0] = batchMagic
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-5))
	binary.BigEndian.PutUint64(b[9:], uint64(base))
	binary.BigEndian.PutUint32(b[17:], uint32(count))
	binary.BigEndian.PutUint64(b[21:], uint64(firstTS))
	binary.BigEndian.PutUint32(b[5:], crc32.Checksum(b[9:], castagnoli))
}

// encodeBatch appends a batch of recs with the given base offset and first
// timestamp; each record's delta is its Timestamp minus firstTS.
func encodeBatch(dst []byte, base, firstTS int64, recs []intentlog.Record) []byte {
	start := len(dst)
	dst = beginBatch(dst)
	for i := range recs {
		dst = appendRecord(dst, recs[i].Timestamp.UnixMicro()-firstTS, &recs[i])
	}
	finishBatch(dst[start:], base, len(recs), firstTS)
	return dst
}

// batchHeader is the decoded fixed part of a batch.
type batchHeader struct {
	base    int64
	count   int
	firstTS int64
	size    int64 // whole frame, header included
}

// next is the offset after the batch's last record.
func (h batchHeader) next() int64 { return h.base + int64(h.count) }

// frameSize returns the size of the frame whose first 5+ bytes are b.
func frameSize(b []byte) (int64, error) {
	if b[0] != batchMagic {
		return 0, corrupt("bad magic byte 0x%02x", b[0])
	}
	n := int64(binary.BigEndian.Uint32(b[1:]))
	if n < batchHeaderLen-5+minRecordLen {
		return 0, corrupt("batch length %d too small", n)
	}
	return 5 + n, nil
}

// parseHeader checks the framing of the whole frame b, without its CRC.
func parseHeader(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderLen {
		return batchHeader{}, corrupt("batch of %d bytes shorter than its header", len(b))
	}
	size, err := frameSize(b)
	if err != nil {
		return batchHeader{}, err
	}
	if size != int64(len(b)) {
		return batchHeader{}, corrupt("batch length field says %d bytes, have %d", size, len(b))
	}
	h := batchHeader{
		base:    int64(binary.BigEndian.Uint64(b[9:])),
		count:   int(binary.BigEndian.Uint32(b[17:])),
		firstTS: int64(binary.BigEndian.Uint64(b[21:])),
		size:    size,
	}
	if h.base < 0 {
		return batchHeader{}, corrupt("negative base offset %d", h.base)
	}
	if h.count == 0 || h.count > (len(b)-batchHeaderLen)/minRecordLen {
		return batchHeader{}, corrupt("record count %d impossible in %d bytes", h.count, len(b))
	}
	return h, nil
}

// checkCRC verifies the CRC of the frame b (at least a header long).
func checkCRC(b []byte) error {
	want := binary.BigEndian.Uint32(b[5:])
	if got := crc32.Checksum(b[9:], castagnoli); got != want {
		return corrupt("crc mismatch: stored %08x, computed %08x", want, got)
	}
	return nil
}

// decodeBatch verifies and decodes the frame b, appending its records to
// dst. Keys and values alias b. On an error dst comes back as it was.
func decodeBatch(dst []intentlog.Record, b []byte) (batchHeader, []intentlog.Record, error) {
	h, err := parseHeader(b)
	if err == nil {
		err = checkCRC(b)
	}
	if err != nil {
		return batchHeader{}, dst, err
	}
	n := len(dst)
	recs := slices.Grow(dst, h.count)[:n+h.count]
	d := decoder{b: b[batchHeaderLen:]}
	for i := range h.count {
		r := &recs[n+i]
		d.left = h.count - i
		d.record(r, h.firstTS, true)
		r.RouteKey, r.Partition, r.Offset = nil, 0, h.base+int64(i)
	}
	if err := d.finish(); err != nil {
		return batchHeader{}, dst, err
	}
	return h, recs, nil
}

// verifyBatch is decodeBatch without allocating records; it returns the
// header and the newest record timestamp.
func verifyBatch(b []byte) (batchHeader, int64, error) {
	h, err := parseHeader(b)
	if err == nil {
		err = checkCRC(b)
	}
	if err != nil {
		return batchHeader{}, 0, err
	}
	maxTS := h.firstTS
	d := decoder{b: b[batchHeaderLen:]}
	var r intentlog.Record
	for range h.count {
		if ts := d.record(&r, h.firstTS, false); ts > maxTS {
			maxTS = ts
		}
	}
	return h, maxTS, d.finish()
}

// decoder reads records; the first error sticks.
type decoder struct {
	b   []byte
	err error
	// The records' headers are cut from hdrs, sized when it runs out for
	// the records left (counting the one being decoded), each with as many
	// headers as that one.
	hdrs []intentlog.Header
	left int
	keys []string // the header keys of the last record, by position
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = corrupt("%d trailing bytes after the last record", len(d.b))
	}
	return d.err
}

// record decodes one record into r and returns its timestamp (unix µs).
// Without full, headers are checked but not kept.
func (d *decoder) record(r *intentlog.Record, firstTS int64, full bool) int64 {
	ts := firstTS + d.varint()
	r.Timestamp = time.UnixMicro(ts)
	r.Key = d.bytes(true)
	r.Value = d.bytes(true)
	n := d.varint()
	if d.err == nil && (n < 0 || n > int64(len(d.b)/2)) {
		d.err = corrupt("header count %d impossible in %d bytes", n, len(d.b))
	}
	if d.err != nil {
		return ts
	}
	r.Headers = nil
	if full && n > 0 {
		r.Headers = d.headers(int(n))
	}
	for i := range n {
		k := d.bytes(false)
		v := d.bytes(true)
		if r.Headers != nil {
			r.Headers[i] = intentlog.Header{Key: d.key(int(i), k), Value: v}
		}
	}
	return ts
}

// headers returns room for n headers of a record, cut from d.hdrs. The
// room is bounded by what the bytes left can hold (a header takes at least
// two), n among them, so that a malformed batch cannot make it huge.
func (d *decoder) headers(n int) []intentlog.Header {
	if len(d.hdrs)+n > cap(d.hdrs) {
		d.hdrs = make([]intentlog.Header, 0, max(min(n*max(d.left, 1), len(d.b)/2), n))
	}
	k := len(d.hdrs)
	d.hdrs = d.hdrs[:k+n]
	return d.hdrs[k : k+n : k+n]
}

// key returns k as a string, the same string as the previous record's
// i-th header key when they are equal (records of a batch mostly carry
// the same headers).
func (d *decoder) key(i int, k []byte) string {
	if i < len(d.keys) && d.keys[i] == string(k) {
		return d.keys[i]
	}
	s := string(k)
	if i < len(d.keys) {
		d.keys[i] = s
	} else {
		d.keys = append(d.keys, s) // i == len(d.keys): headers come in order
	}
	return s
}

// varint reads one shortest-form zig-zag varint.
func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = corrupt("bad varint")
		return 0
	}
	if n != varintLen(v) {
		d.err = corrupt("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string; -1 means nil when nilOK.
func (d *decoder) bytes(nilOK bool) []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	if n == -1 && nilOK {
		return nil
	}
	if n < 0 || n > int64(len(d.b)) {
		d.err = corrupt("length %d out of range (%d bytes left)", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// varintLen is the length of binary.AppendVarint(nil, v).
func varintLen(v int64) int {
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	n := 1
	for ux >= 0x80 {
		ux >>= 7
		n++
	}
	return n
}

// frameReader iterates over the frames of a segment file in [pos, limit),
// reading in chunks with ReadAt. Frames returned alias a buffer that is never
// reused unless reuse is set (then a frame is valid until the next call).
type frameReader struct {
	r      io.ReaderAt
	pos    int64 // position of the next frame
	limit  int64 // end of the readable data
	chunk  int64
	reuse  bool
	buf    []byte // file bytes [bufPos, bufPos+len(buf))
	bufPos int64
}

// next returns the next frame and its position, or io.EOF at limit. A
// framing problem is an error wrapping ErrCorrupt, a failed read one
// wrapping ErrStorage (storageErr); pos then stays at the bad frame.
func (fr *frameReader) next() ([]byte, int64, error) {
	pos := fr.pos
	if pos >= fr.limit {
		return nil, pos, io.EOF
	}
	if fr.limit-pos < batchHeaderLen {
		return nil, pos, corrupt("truncated batch header (%d bytes)", fr.limit-pos)
	}
	hdr, err := fr.window(batchHeaderLen)
	if err != nil {
		return nil, pos, err
	}
	size, err := frameSize(hdr)
	if err != nil {
		return nil, pos, err
	}
	if size > fr.limit-pos {
		return nil, pos, corrupt("batch of %d bytes overruns the data end by %d", size, size-(fr.limit-pos))
	}
	frame, err := fr.window(size)
	if err != nil {
		return nil, pos, err
	}
	fr.pos += size
	return frame, pos, nil
}

// window returns the n bytes at fr.pos, reading a new chunk when needed.
func (fr *frameReader) window(n int64) ([]byte, error) {
	off := fr.pos - fr.bufPos
	if fr.buf != nil && off >= 0 && off+n <= int64(len(fr.buf)) {
		return fr.buf[off : off+n : off+n], nil
	}
	size := max(n, min(fr.chunk, fr.limit-fr.pos))
	var b []byte
	if fr.reuse && int64(cap(fr.buf)) >= size {
		b = fr.buf[:size]
	} else {
		b = make([]byte, size)
	}
	if _, err := fr.r.ReadAt(b, fr.pos); err != nil {
		if err == io.EOF {
			return nil, corrupt("file ends before %d", fr.pos+size)
		}
		return nil, storageErr(err)
	}
	fr.buf, fr.bufPos = b, fr.pos
	return b[:n:n], nil
}
