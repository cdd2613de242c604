package embedded

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// RepairHint is the fix that errors about corrupt segments name.
const RepairHint = "stop wail and run `wail log repair DATA_DIR` (it moves the damaged bytes to a quarantine " +
	"file and lists the lost offsets), or restore DATA_DIR from a backup"

// corruptSegment is the error for damage that recovery does not cut off by
// itself: it names the file, position and offset, and the fix.
func corruptSegment(file string, pos, off int64, reason error, detail string) error {
	return fmt.Errorf("%w: %s at position %d (offset %d): %v; %s: this is not the torn tail of a crash, "+
		"and dropping it could drop acknowledged records; %s",
		intentlog.ErrCorrupt, file, pos, off, stripCorrupt(reason), detail, RepairHint)
}

// stripCorrupt drops the "corrupt log data: " prefix of a reason that
// wraps ErrCorrupt, to say it once.
func stripCorrupt(err error) string {
	s := err.Error()
	if p := intentlog.ErrCorrupt.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// resumeAt returns where valid data resumes after a scan stopped at a bad
// batch at pos that should have started at offset next: at pos itself when
// the batch there is whole and valid with a base offset of at least
// minAtPos (only its offsets are wrong; it was written completely, since a
// torn write cannot leave a whole batch), else at the first valid batch
// with a base offset of at least next where badBatch says one may start.
func resumeAt(r io.ReaderAt, pos, limit, next, minAtPos int64) (int64, batchHeader, bool, error) {
	return resume(r, pos, limit, next, minAtPos, false)
}

// resumeRepair is resumeAt for Repair, which keeps what it finds: after
// damage in the records of a batch whose header is the writer's, no batch
// inside the bad batch's declared extent is taken (it is in a value).
func resumeRepair(r io.ReaderAt, pos, limit, next, minAtPos int64) (int64, batchHeader, bool, error) {
	return resume(r, pos, limit, next, minAtPos, true)
}

func resume(r io.ReaderAt, pos, limit, next, minAtPos int64, strict bool) (int64, batchHeader, bool, error) {
	if h, ok, err := validBatchAt(r, pos, limit, minAtPos); err != nil || ok {
		return pos, h, ok, err
	}
	at, from, err := badBatch(r, pos, limit, next, strict)
	if err != nil {
		return 0, batchHeader{}, false, err
	}
	if at >= 0 {
		if h, ok, err := validBatchAt(r, at, limit, next); err != nil || ok {
			return at, h, ok, err
		}
	}
	return findBatch(r, from, limit, next)
}

// maxFrameBytes bounds any batch and any record's field: MaxBatchBytes and
// MaxRecordBytes are at most 1 GiB.
const maxFrameBytes = 1 << 30

// badBatch says where a valid batch after the bad batch at pos (which
// should have started at offset next) may start: at at (when at >= 0),
// else at or after from.
//
// A record's value is any bytes a client sent, so it may hold an encoded
// batch with a valid CRC. When a crash tears the batch holding it, the
// torn tail contains a whole, valid batch; taking it for a batch after the
// damage would make Open refuse a torn tail, and `wail log repair` keep
// records no one appended. A torn write keeps a prefix of the batch,
// header first (bytes it did not write may read as zeros: the data is
// taken to end where they start). So the bad batch's records are walked as
// the writer encodes them (walker.records), from its header up to the end
// its length field declares, or up to the data's end when that comes
// first:
//
//   - They are consistent up to the declared end: the batch is whole in
//     its framing (its CRC, base, count or magic byte was damaged). A
//     batch before that end is inside one of its records: from is there.
//   - They are consistent up to the data's end, cut short: a torn write
//     when the header is as the writer wrote it (base next, a plausible
//     count): from is the declared end. Else damage (a length field and
//     what follows damaged, swallowing the batches after them): pos+1.
//   - A record ends before the declared end where a batch's magic byte
//     follows (a record of the writer's starts with a 0 byte): the header
//     was damaged, its length field (which the CRC does not cover) and
//     maybe more. at is that position, where the next batch starts.
//   - The records are not the writer's, within a declared end inside the
//     data: damage in the records; the length field most likely holds,
//     and at is the declared end (from pos+1 if no batch starts there).
//   - Anything else (a header that is not whole, a length over any
//     batch's): the bytes were damaged, and any later batch counts: from
//     is pos+1.
//
// Zeros count as a crash's only when they run to the end of the file (a
// record without headers ends in a 0 byte). Repair (resumeRepair) starts
// at the declared end after damage in the records of a batch whose header
// is the writer's; Open searches from pos+1, to refuse rather than risk
// truncating batches. Open also refuses a last batch whose records are
// whole to a declared end inside the data with a header not the writer's
// (headerDamaged).
//
// It reads the bad batch about once, whatever its values hold (but for
// damage to the header, where the search from pos+1 reads it a bounded
// number of times more: findBatch).
func badBatch(r io.ReaderAt, pos, limit, next int64, strict bool) (at, from int64, err error) {
	damaged := pos + 1
	if limit-pos < batchHeaderLen {
		return -1, damaged, nil
	}
	hdr := make([]byte, batchHeaderLen)
	if _, err := r.ReadAt(hdr, pos); err != nil {
		return -1, 0, err
	}
	magic := hdr[0] == batchMagic
	hdr[0] = batchMagic
	size, err := frameSize(hdr)
	if err != nil || size > maxFrameBytes || !magic && size > limit-pos {
		return -1, damaged, nil
	}
	end := pos + size
	stop := min(end, limit)
	cut := end > limit
	w := walker{r: r, pos: pos + batchHeaderLen, end: stop, buf: make([]byte, 64<<10)}
	p, ok, err := w.records(cut)
	if err == nil && !ok && p < 0 && w.short && end < limit {
		// A record runs past the declared end, inside the data: the
		// length field was damaged (made smaller). Walk on to where the
		// records end: the declared end may be inside a value.
		w = walker{r: r, pos: pos + batchHeaderLen, end: limit, buf: w.buf}
		if p, ok, err = w.records(false); err == nil && ok {
			return -1, limit, nil
		}
	}
	if err == nil && !ok && p < 0 {
		// Bytes a crash left unwritten may read as zeros (ext4), from the
		// torn point to the end of the file: the batch's data may end
		// where they start, cut there. (Every record without headers ends
		// in a 0 byte: zeros followed by more data are not a crash's.)
		var z int64
		if z, err = dataEnd(r, pos+batchHeaderLen, limit); err == nil && z < stop {
			cut = true
			w = walker{r: r, pos: pos + batchHeaderLen, end: z, buf: w.buf}
			p, ok, err = w.records(cut)
		}
	}
	switch {
	case err != nil:
		return -1, 0, err
	case ok && cut && !writersHeader(hdr, size, next):
		// A torn write keeps the header whole: a walk cut short after a
		// damaged header may have skipped the batches that follow.
		return -1, damaged, nil
	case ok:
		return -1, end, nil
	case p >= 0:
		return p, damaged, nil
	case end <= limit && strict && writersHeader(hdr, size, next):
		// Damage in the records: the length field most likely holds, and
		// a batch before the declared end is in one of its values.
		return end, end, nil
	case end <= limit:
		// Damage in the records: the length field most likely holds, and
		// the next batch starts at the declared end.
		return end, damaged, nil
	}
	return -1, damaged, nil
}

// writersHeader reports whether the header hdr of a batch of size bytes
// is as the writer wrote it for the batch at offset next.
func writersHeader(hdr []byte, size, next int64) bool {
	n := int64(binary.BigEndian.Uint32(hdr[17:]))
	return int64(binary.BigEndian.Uint64(hdr[9:])) == next && n > 0 && n <= (size-batchHeaderLen)/minRecordLen
}

// dataEnd returns the position after the last nonzero byte in [from, to),
// from when there is none; it reads the trailing zeros once.
func dataEnd(r io.ReaderAt, from, to int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for to > from {
		n := min(int64(len(buf)), to-from)
		if _, err := r.ReadAt(buf[:n], to-n); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexFunc(buf[:n], func(c rune) bool { return c != 0 }); i >= 0 {
			return to - n + int64(i) + 1, nil
		}
		to -= n
	}
	return from, nil
}

// wholeToEnd reports whether the bad batch at pos is whole up to limit:
// its CRC matches the bytes [pos+9, limit). A torn write cannot leave
// that; damage to the magic byte or the length field (which the CRC does
// not cover) can.
func wholeToEnd(r io.ReaderAt, pos, limit int64) (bool, error) {
	if limit-pos < batchHeaderLen+minRecordLen || limit-pos > maxFrameBytes {
		return false, nil
	}
	var crc [4]byte
	if _, err := r.ReadAt(crc[:], pos+5); err != nil {
		return false, err
	}
	buf := make([]byte, readChunk)
	var c uint32
	for at := pos + 9; at < limit; at += int64(len(buf)) {
		n := min(int64(len(buf)), limit-at)
		if _, err := r.ReadAt(buf[:n], at); err != nil && err != io.EOF {
			return false, err
		}
		c = crc32.Update(c, castagnoli, buf[:n])
	}
	return c == binary.BigEndian.Uint32(crc[:]), nil
}

// headerDamaged reports whether the bad batch at pos (which should have
// started at offset next) is whole in its records, up to a declared end
// inside the data, with a base offset or record count not as the writer
// wrote them: a torn write keeps the header whole, and a crash inside the
// header leaves only zeros after it.
func headerDamaged(r io.ReaderAt, pos, limit, next int64) (bool, error) {
	if limit-pos < batchHeaderLen {
		return false, nil
	}
	hdr := make([]byte, batchHeaderLen)
	if _, err := r.ReadAt(hdr, pos); err != nil {
		return false, err
	}
	hdr[0] = batchMagic
	size, err := frameSize(hdr)
	if err != nil || size > limit-pos || writersHeader(hdr, size, next) {
		return false, nil
	}
	if z, err := dataEnd(r, pos+batchHeaderLen, pos+size); err != nil || z == pos+batchHeaderLen {
		return false, err
	}
	w := walker{r: r, pos: pos + batchHeaderLen, end: pos + size, buf: make([]byte, 64<<10)}
	_, ok, err := w.records(false)
	return ok, err
}

// walker reads the bytes [pos, end) of a file through a window.
type walker struct {
	r        io.ReaderAt
	pos, end int64
	buf      []byte
	bufAt    int64 // the file position of buf[0]
	n        int   // valid bytes in buf
	short    bool  // records stopped at a record running past end
}

// peek returns the bytes at pos, at most max of them, reading the window
// again when pos is outside it.
func (w *walker) peek(max int) ([]byte, error) {
	if w.pos < w.bufAt || w.pos+int64(max) > w.bufAt+int64(w.n) {
		w.n = int(min(int64(len(w.buf)), w.end-w.pos))
		w.bufAt = w.pos
		if _, err := w.r.ReadAt(w.buf[:w.n], w.pos); err != nil && err != io.EOF {
			return nil, err
		}
	}
	i := int(w.pos - w.bufAt)
	return w.buf[i:min(w.n, i+max)], nil
}

// Results of reading one field.
const (
	fieldOK    = iota
	fieldShort // the data ends inside it
	fieldBad   // not as the writer encodes it
)

// varint reads a varint in its shortest form.
func (w *walker) varint() (int64, int, error) {
	b, err := w.peek(binary.MaxVarintLen64)
	if err != nil {
		return 0, 0, err
	}
	v, n := binary.Varint(b)
	switch {
	case n == 0 && len(b) < binary.MaxVarintLen64:
		return 0, fieldShort, nil
	case n <= 0 || n != varintLen(v):
		return 0, fieldBad, nil
	}
	w.pos += int64(n)
	return v, fieldOK, nil
}

// field skips a length-prefixed byte string whose length is at least
// minLen (-1: nil allowed).
func (w *walker) field(minLen int64) (int, error) {
	n, st, err := w.varint()
	switch {
	case err != nil || st != fieldOK:
		return st, err
	case n < minLen || n > maxFrameBytes:
		return fieldBad, nil
	case n > w.end-w.pos:
		return fieldShort, nil
	}
	w.pos += max(n, 0)
	return fieldOK, nil
}

// records walks records as the writer encodes them (timestamp delta 0,
// shortest varints) from pos, whatever the batch header's count. ok says
// that they end exactly at end, or, when the data is cut there, that end
// is inside one of them. Else p is where a record ended and a batch's
// magic byte follows (-1: none).
func (w *walker) records(cut bool) (p int64, ok bool, err error) {
	first := w.pos
	for w.pos < w.end {
		b, err := w.peek(1)
		if err != nil {
			return -1, false, err
		}
		if b[0] != 0 { // the timestamp delta
			if b[0] == batchMagic && w.pos > first {
				return w.pos, false, nil
			}
			return -1, false, nil
		}
		w.pos++
		st, err := w.field(-1) // key
		if st == fieldOK && err == nil {
			st, err = w.field(-1) // value
		}
		var headers int64
		if st == fieldOK && err == nil {
			if headers, st, err = w.varint(); st == fieldOK && headers < 0 {
				st = fieldBad
			}
		}
		for ; st == fieldOK && err == nil && headers > 0; headers-- {
			if st, err = w.field(0); st == fieldOK && err == nil {
				st, err = w.field(-1)
			}
		}
		if err != nil || st != fieldOK {
			w.short = st == fieldShort
			return -1, st == fieldShort && cut, err
		}
	}
	return -1, true, nil
}

// findBatch looks for the first position in [from, limit) where a whole,
// valid batch (framing, CRC and records) with a base offset >= minBase
// starts. It reads the region a bounded number of times, whatever it
// holds (scan.go).
func findBatch(r io.ReaderAt, from, limit, minBase int64) (int64, batchHeader, bool, error) {
	sums := newCRCPrefixes(r, from, limit)
	hdr := make([]byte, batchHeaderLen)
	buf := make([]byte, readChunk)
	for at := from; at < limit; at += int64(len(buf)) {
		n := int(min(int64(len(buf)), limit-at))
		if _, err := r.ReadAt(buf[:n], at); err != nil && err != io.EOF {
			return 0, batchHeader{}, false, err
		}
		for i := 0; i < n; i++ {
			j := bytes.IndexByte(buf[i:n], batchMagic)
			if j < 0 {
				break
			}
			i += j
			if ok, err := sums.mayStart(at+int64(i), minBase, hdr); err != nil || !ok {
				if err != nil {
					return 0, batchHeader{}, false, err
				}
				continue
			}
			h, ok, err := validBatchAt(r, at+int64(i), limit, minBase)
			if err != nil || ok {
				return at + int64(i), h, ok, err
			}
		}
	}
	return 0, batchHeader{}, false, nil
}

// validBatchAt reports whether a valid batch with base >= minBase starts at
// pos.
func validBatchAt(r io.ReaderAt, pos, limit, minBase int64) (batchHeader, bool, error) {
	if limit-pos < batchHeaderLen {
		return batchHeader{}, false, nil
	}
	hdr := make([]byte, batchHeaderLen)
	if _, err := r.ReadAt(hdr, pos); err != nil {
		return batchHeader{}, false, err
	}
	size, err := frameSize(hdr)
	if err != nil || size > limit-pos {
		return batchHeader{}, false, nil
	}
	frame := make([]byte, size)
	if _, err := r.ReadAt(frame, pos); err != nil {
		return batchHeader{}, false, err
	}
	h, _, err := verifyBatch(frame)
	if err != nil || h.base < minBase {
		return batchHeader{}, false, nil
	}
	return h, true, nil
}

// lostFile, in a partition directory, lists the offset ranges a repair
// removed, so that Open accepts the gaps they leave.
const lostFile = "#lost"

// Lost is a range of offsets that a repair removed from a partition.
type Lost struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// From and To bound the lost offsets [From, To). To is -1 when the
	// damage ran to the end of the partition's last segment: then the lost
	// records, if any, were never followed by a valid one, as with a torn
	// tail, and the log goes on at From (the range excuses no later gap).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Segment is the damaged file, Position and Bytes the damaged region in
	// it, Quarantine the file the bytes were moved to ("" when none).
	Segment    string `json:"segment"`
	Position   int64  `json:"position"`
	Bytes      int64  `json:"bytes"`
	Quarantine string `json:"quarantine,omitempty"`
	Reason     string `json:"reason"`
}

// lostRanges is a partition's #lost file.
type lostRanges []Lost

// covers reports whether offsets [from, to) are recorded as lost. A range
// open at its end (To -1) covers none: the damage ran to the end of the
// last segment, so the log went on at From with new records, and a gap
// among those is a loss no repair recorded.
func (ls lostRanges) covers(from, to int64) bool {
	for _, l := range ls {
		if l.To != -1 && l.From <= from && l.To >= to {
			return true
		}
	}
	return false
}

// lostRepairHint is the fix that Open's error about a damaged #lost file
// names.
const lostRepairHint = "stop wail and run `wail log repair DATA_DIR` (it keeps the file's bytes in a quarantine " +
	"file and lists again the gaps between the partition's segments)"

func readLost(fsys vfs.FS, dir string) (lostRanges, error) {
	b, err := vfs.ReadFile(fsys, filepath.Join(dir, lostFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ls lostRanges
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", filepath.Join(dir, lostFile), intentlog.ErrCorrupt, err)
	}
	return ls, nil
}

func writeLost(fsys vfs.FS, dir string, ls lostRanges) error {
	b, err := json.MarshalIndent(ls, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(fsys, filepath.Join(dir, lostFile), b, false)
}
