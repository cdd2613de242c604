package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wail-cdc/wail/internal/vfs"
	"sort"
)

// The sparse index of a segment: a sequence of 16-byte entries, one for the
// first batch of the segment and then one for each batch that starts at
// least IndexIntervalBytes after the previously indexed batch:
//
//	offset  size  field
//	0       4     relative offset (uint32): batch base offset - segment base
//	4       4     position (uint32) of the batch in the .log file
//	8       8     first timestamp (int64, unix µs) of the batch
//
// The .idx file is never fsync'd: it is verified on open and rebuilt from the
// .log whenever it is missing, short or inconsistent; a read that finds a
// middle entry wrong rebuilds it too (reindex.go).

const indexEntryLen = 16

type indexEntry struct {
	rel uint32
	pos uint32
	ts  int64
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	dst = binary.BigEndian.AppendUint32(dst, e.pos)
	return binary.BigEndian.AppendUint64(dst, uint64(e.ts))
}

func encodeIndex(entries []indexEntry) []byte {
	b := make([]byte, 0, len(entries)*indexEntryLen)
	for _, e := range entries {
		b = appendIndexEntry(b, e)
	}
	return b
}

// parseIndex decodes an index file of a segment of size bytes and checks that
// it starts at the first batch and that offsets and positions increase.
func parseIndex(b []byte, size int64) ([]indexEntry, error) {
	if len(b)%indexEntryLen != 0 {
		return nil, errors.New("index length not a multiple of the entry size")
	}
	entries := make([]indexEntry, len(b)/indexEntryLen)
	for i := range entries {
		e := b[i*indexEntryLen:]
		entries[i] = indexEntry{
			rel: binary.BigEndian.Uint32(e),
			pos: binary.BigEndian.Uint32(e[4:]),
			ts:  int64(binary.BigEndian.Uint64(e[8:])),
		}
		if int64(entries[i].pos) >= size {
			return nil, fmt.Errorf("index entry %d points beyond the log end", i)
		}
		if i == 0 && (entries[0].rel != 0 || entries[0].pos != 0) {
			return nil, errors.New("first index entry is not the first batch")
		}
		if i > 0 && (entries[i].rel <= entries[i-1].rel || entries[i].pos <= entries[i-1].pos) {
			return nil, fmt.Errorf("index entry %d out of order", i)
		}
	}
	return entries, nil
}

// lookupOffset returns the position of the last indexed batch whose base is
// at most rel (0 when there is none).
func lookupOffset(entries []indexEntry, rel uint32) int64 {
	e, _ := entryForOffset(entries, rel)
	return int64(e.pos)
}

// entryForOffset returns the last index entry whose base is at most rel,
// ok false (and position 0) when there is none.
func entryForOffset(entries []indexEntry, rel uint32) (e indexEntry, ok bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].rel > rel })
	if i == 0 {
		return indexEntry{}, false
	}
	return entries[i-1], true
}

// lookupTime returns the position of the last indexed batch whose timestamp
// is below ts (0 when there is none).
func lookupTime(entries []indexEntry, ts int64) int64 {
	e, _ := entryForTime(entries, ts)
	return int64(e.pos)
}

// entryForTime returns the last index entry whose timestamp is below ts,
// ok false (and position 0) when there is none.
func entryForTime(entries []indexEntry, ts int64) (e indexEntry, ok bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].ts >= ts })
	if i == 0 {
		return indexEntry{}, false
	}
	return entries[i-1], true
}

// scan is the state of a walk over the batches of a segment; it rebuilds the
// index as it goes.
type scan struct {
	base     int64 // segment base offset
	interval int64 // index interval
	index    []indexEntry
	pos      int64 // position of the next batch
	next     int64 // offset the next batch must start at
	maxTS    int64 // newest timestamp seen (math.MinInt64 when none)
	added    int   // index entries added by this walk
}

// run walks frames from s.pos to limit. With verify, every batch's CRC and
// records are checked; otherwise only the framing. It returns nil at a clean
// end, an error wrapping ErrCorrupt at the first bad batch (s.pos is then
// that batch's position) or an I/O error.
func (s *scan) run(r io.ReaderAt, limit int64, verify bool) error {
	fr := frameReader{r: r, pos: s.pos, limit: limit, chunk: readChunk, reuse: true}
	for {
		frame, pos, err := fr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var h batchHeader
		var maxTS int64
		if verify {
			h, maxTS, err = verifyBatch(frame)
		} else {
			h, err = parseHeader(frame)
			maxTS = h.firstTS
		}
		if err != nil {
			return err
		}
		if h.base != s.next {
			return corrupt("batch base offset %d, want %d", h.base, s.next)
		}
		if h.next()-s.base > maxRelOffset {
			return corrupt("batch ends at offset %d, too far from segment base %d", h.next(), s.base)
		}
		s.add(pos, h)
		s.pos, s.next, s.maxTS = pos+h.size, h.next(), max(s.maxTS, maxTS)
	}
}

// add indexes the batch h at pos when the interval rule asks for it.
func (s *scan) add(pos int64, h batchHeader) {
	if n := len(s.index); n > 0 && pos-int64(s.index[n-1].pos) < s.interval {
		return
	}
	s.index = append(s.index, indexEntry{rel: uint32(h.base - s.base), pos: uint32(pos), ts: h.firstTS})
	s.added++
}

// readIndexFile reads an .idx file; a missing file is an empty index with
// ok false.
func readIndexFile(fsys vfs.FS, path string) ([]byte, bool, error) {
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// writeIndexFile replaces an .idx file (not fsync'd: it can be rebuilt).
func writeIndexFile(fsys vfs.FS, path string, entries []indexEntry) error {
	tmp := path + ".tmp"
	if err := vfs.WriteFile(fsys, tmp, encodeIndex(entries), 0o644); err != nil {
		return err
	}
	return fsys.Rename(tmp, path)
}
