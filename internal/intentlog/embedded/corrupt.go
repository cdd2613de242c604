package embedded

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
// after pos with a base offset of at least next that is not inside the bad
// batch.
//
// A record's value is any bytes a client sent, so it may hold an encoded
// batch with a valid CRC. When a crash tears the batch holding it, the
// torn tail contains a whole, valid batch, and taking it for the next one
// would make Open refuse a torn tail, and `wail log repair` keep records
// no one appended. So when the bad batch's header is whole (magic and a
// plausible length, as a torn write leaves it: the header is its first
// bytes), a batch that starts before the end that header declares is
// inside it, unless the bad batch ends exactly there when its length
// field is corrected: that is damage to the length field alone (the CRC
// does not cover it), and the batch there is the one that follows
// (lengthDamage). A header that is not whole declares nothing, and any
// later batch counts.
func resumeAt(r io.ReaderAt, pos, limit, next, minAtPos int64) (int64, batchHeader, bool, error) {
	if h, ok, err := validBatchAt(r, pos, limit, minAtPos); err != nil || ok {
		return pos, h, ok, err
	}
	from := pos + 1
	hdr := make([]byte, batchHeaderLen)
	n, err := r.ReadAt(hdr, pos)
	if n < len(hdr) && err != io.EOF {
		return 0, batchHeader{}, false, err
	}
	if size, ferr := frameSize(hdr); n == len(hdr) && ferr == nil {
		q, h, ok, err := lengthDamage(r, pos, min(pos+size, limit), limit, next, binary.BigEndian.Uint32(hdr[5:]))
		if err != nil || ok {
			return q, h, ok, err
		}
		from = pos + size
	}
	return findBatch(r, from, limit, next)
}

// lengthDamage looks, in one pass, for the first q in (pos, stop) where
// the bad batch at pos becomes whole and valid when its length field is
// corrected to end at q (its CRC, crc, matches the bytes up to q), and a
// valid batch with a base offset >= minBase starts at q.
func lengthDamage(r io.ReaderAt, pos, stop, limit, minBase int64, crc uint32) (int64, batchHeader, bool, error) {
	buf := make([]byte, readChunk)
	c := ^uint32(0) // CRC-32C of bytes [pos+9, at+i), before its final inversion
	for at := pos + 9; at < stop; at += int64(len(buf)) {
		n := int(min(int64(len(buf)), stop-at))
		if _, err := r.ReadAt(buf[:n], at); err != nil && err != io.EOF {
			return 0, batchHeader{}, false, err
		}
		for i, b := range buf[:n] {
			c = castagnoli[byte(c)^b] ^ c>>8
			q := at + int64(i) + 1
			if ^c != crc || q-pos < batchHeaderLen+minRecordLen || q >= stop {
				continue
			}
			h, ok, err := validBatchAt(r, q, limit, minBase)
			if err == nil && ok {
				ok, err = wholeWithLength(r, pos, q)
			}
			if err != nil || ok {
				return q, h, ok, err
			}
		}
	}
	return 0, batchHeader{}, false, nil
}

// wholeWithLength reports whether the bytes [pos, q) are a whole, valid
// batch once its length field says so.
func wholeWithLength(r io.ReaderAt, pos, q int64) (bool, error) {
	frame := make([]byte, q-pos)
	if _, err := r.ReadAt(frame, pos); err != nil {
		return false, err
	}
	binary.BigEndian.PutUint32(frame[1:], uint32(len(frame)-5))
	_, _, err := verifyBatch(frame)
	return err == nil, nil
}

// findBatch looks for the first position in [from, limit) where a whole,
// valid batch (framing, CRC and records) with a base offset >= minBase
// starts.
func findBatch(r io.ReaderAt, from, limit, minBase int64) (int64, batchHeader, bool, error) {
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
