package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble's WAL format (github.com/cockroachdb/pebble/v2/record): 32 KiB
// blocks of chunks; since FormatWALSyncChunks (Open asks for the newest
// format) a chunk's header is checksum (4, over the rest of the header from
// the encoding byte on, and the payload), length (2), encoding (1: 9-12),
// log number (4) and the offset up to which the WAL had been synced when
// the chunk was written (8). A block's last bytes that cannot hold a
// header are zeros. The first WAL of a new store is written before Pebble
// moves the store to that format: its chunks (encoding 5-8) carry no
// synced offset, so damage in it cannot be told from a torn tail, and is
// left to Pebble.
const (
	walBlockSize            = 32 << 10
	walHeaderSize           = 19
	walRecyclableHeaderSize = 11
	walRecyclableFirst      = 5  // recyclableFullChunkEncoding
	walSyncFirst            = 9  // walSyncFullChunkEncoding
	walSyncLast             = 12 // walSyncLastChunkEncoding
)

var walCRC = crc32.MakeTable(crc32.Castagnoli)

// ErrDamagedWAL: the WAL the store last wrote holds damaged bytes that
// were synced; see checkWAL.
var ErrDamagedWAL = errors.New("the store's WAL is damaged")

// checkWAL refuses a last WAL whose replay would stop at damage rather
// than at the torn tail of a crash. Pebble replays the last WAL up to the
// first chunk that fails its checksum and, unless a chunk of a later 32
// KiB block says that position had been synced, takes it for a torn tail:
// damage inside the last block (all of a WAL under 32 KiB) silently drops
// every write after it, acknowledged ones included
// (TestDamagedWALRefused). So the WAL is walked here first: at the first
// position that holds no valid chunk, any valid chunk of this WAL further
// on (anywhere, this block included) whose synced offset lies past it
// proves the position was synced, hence damaged. A torn tail has no such
// chunk after it: nothing after an unsynced position says it was synced.
// Only the last WAL is checked: Pebble refuses damage in the others.
func checkWAL(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	last, lastNum := "", uint64(0)
	for _, n := range names {
		num, ok := strings.CutSuffix(n, ".log")
		v, perr := strconv.ParseUint(num, 10, 64)
		if ok && perr == nil && (last == "" || v > lastNum) {
			last, lastNum = n, v
		}
	}
	if last == "" {
		return nil
	}
	path := fs.PathJoin(dir, last)
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	logNum := uint32(lastNum)
	end := walEnd(b, logNum)
	if end >= len(b) || !syncedPast(b, end, logNum) {
		return nil
	}
	return fmt.Errorf("%w: %s holds damaged bytes at byte %d, and a record after them says they had been synced: this is not the torn tail "+
		"of a crash, and Pebble would start without every write from there on, acknowledged ones included. Check the disk (dmesg, smartctl -a). "+
		"Then restore DATA_DIR from a backup; or, to accept the loss of the store's writes from that position on, "+
		"stop wail, copy the file aside, run `truncate -s %d %s`, start wail and run `wail table reconcile TABLE` for every table",
		ErrDamagedWAL, path, end, end, path)
}

// walEnd is the position of the first bytes of b that are not a valid
// chunk of log logNum (len(b) when the WAL is whole).
func walEnd(b []byte, logNum uint32) int {
	pos := 0
	for pos < len(b) {
		if end, _, ok := walChunk(b, pos, logNum); ok {
			pos = end
			continue
		}
		blockEnd := (pos/walBlockSize + 1) * walBlockSize
		if blockEnd-pos >= walHeaderSize || !zeros(b[pos:min(blockEnd, len(b))]) {
			return pos
		}
		pos = blockEnd // the block's padding
	}
	return len(b)
}

func zeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// syncedPast reports whether a valid chunk of log logNum after position
// bad says the WAL had been synced past bad when it was written.
func syncedPast(b []byte, bad int, logNum uint32) bool {
	for p := bad + 1; p+walHeaderSize <= len(b); p++ {
		if b[p+6] < walSyncFirst || b[p+6] > walSyncLast || binary.LittleEndian.Uint32(b[p+7:]) != logNum {
			continue // cheap tests first: most positions are no header
		}
		if _, synced, ok := walChunk(b, p, logNum); ok && synced > uint64(bad) {
			return true
		}
	}
	return false
}

// walChunk checks the chunk whose header is at pos: of the recyclable or
// the sync-offset format, of log logNum, inside its block and b, its
// checksum right. It returns where the chunk ends and the synced offset it
// carries (0 for the recyclable format).
func walChunk(b []byte, pos int, logNum uint32) (end int, synced uint64, ok bool) {
	if pos+walRecyclableHeaderSize > len(b) {
		return 0, 0, false
	}
	enc, size := b[pos+6], walHeaderSize
	switch {
	case enc >= walSyncFirst && enc <= walSyncLast:
	case enc >= walRecyclableFirst && enc < walSyncFirst:
		size = walRecyclableHeaderSize
	default:
		return 0, 0, false
	}
	if binary.LittleEndian.Uint32(b[pos+7:]) != logNum {
		return 0, 0, false
	}
	end = pos + size + int(binary.LittleEndian.Uint16(b[pos+4:]))
	if end > len(b) || end > (pos/walBlockSize+1)*walBlockSize {
		return 0, 0, false
	}
	c := crc32.Checksum(b[pos+6:end], walCRC)
	if (c>>15|c<<17)+0xa282ead8 != binary.LittleEndian.Uint32(b[pos:]) {
		return 0, 0, false
	}
	if size == walHeaderSize {
		synced = binary.LittleEndian.Uint64(b[pos+11:])
	}
	return end, synced, true
}
