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

// Pebble's log format (github.com/cockroachdb/pebble/v2/record), of the
// WAL and the MANIFEST: 32 KiB blocks of chunks, a chunk's header a
// checksum (4, over the rest of the header from the encoding byte on, and
// the payload), a length (2) and an encoding (1), then by encoding: 1-4
// (the MANIFEST's) nothing more; 5-8 the log number (4); 9-12 (the WAL's
// since FormatWALSyncChunks, Open asks for the newest format) the log
// number and the offset up to which the WAL had been synced when the
// chunk was written (8). A block's last bytes that cannot hold a header
// are zeros. The first WAL of a new store is written before Pebble moves
// the store to that format: its chunks (5-8) carry no synced offset, so
// damage in it cannot be told from a torn tail, and is left to Pebble.
const (
	logBlockSize     = 32 << 10
	legacyHeaderSize = 7
	recycHeaderSize  = 11
	syncHeaderSize   = 19
)

var logCRC = crc32.MakeTable(crc32.Castagnoli)

// ErrDamagedLog: the store's last WAL or its MANIFEST holds damaged bytes
// that had been synced; see checkLogs.
var ErrDamagedLog = errors.New("the store's WAL or MANIFEST is damaged")

// checkLogs refuses a last WAL or a MANIFEST whose replay would stop at
// damage rather than at the torn tail of a crash. Pebble reads both up to
// the first chunk that fails its checksum and takes the rest for a torn
// tail: the MANIFEST always, silently dropping every later version edit
// (the store opened empty, and Pebble deleted the sstables no edit named),
// the last WAL unless a chunk of a later 32 KiB block says that position
// had been synced (damage in the last block, all of a WAL under 32 KiB,
// dropped every write after it, acknowledged ones included). So both are
// walked here first (TestDamagedLogRefused). At the first position that
// holds no valid chunk, a valid chunk further on proves the position was
// synced, so damaged: in the MANIFEST one that starts a record (full or
// first: Pebble syncs each version edit before it writes the next), in
// the WAL one whose synced offset lies past it. A torn tail has none:
// nothing is written after an unsynced MANIFEST edit, and no WAL chunk
// written after an unsynced position says it was synced. The disk may
// keep an unsynced edit's later chunks and lose its first (the page of
// the next block, newly allocated, written with the file's new size, the
// rewrite of the page before it not): those start no record
// (TestTornManifestEditOpens). The search starts right after the damaged position (its
// length may be what was damaged), so a record torn by a power loss whose
// value holds the bytes of a valid chunk with a later synced offset (a
// client's, crafted) makes Open refuse: the truncate the error gives then
// starts the store as Pebble would have. Only the last WAL is checked:
// Pebble refuses damage in the others.
func checkLogs(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	wal, walNum := "", uint64(0)
	manifest, marker := "", uint64(0)
	for _, n := range names {
		if num, ok := strings.CutSuffix(n, ".log"); ok {
			if v, err := strconv.ParseUint(num, 10, 64); err == nil && (wal == "" || v > walNum) {
				wal, walNum = n, v
			}
		}
		// marker.manifest.<iteration>.<MANIFEST-n>: the highest iteration
		// names the current MANIFEST.
		if rest, ok := strings.CutPrefix(n, "marker.manifest."); ok {
			it, file, _ := strings.Cut(rest, ".")
			if v, err := strconv.ParseUint(it, 10, 64); err == nil && (manifest == "" || v > marker) {
				manifest, marker = file, v
			}
		}
	}
	for _, l := range []struct {
		name   string
		logNum uint32
		wal    bool
	}{{wal, uint32(walNum), true}, {manifest, 0, false}} {
		if l.name == "" || l.name == "nonexistent" {
			continue
		}
		path := fs.PathJoin(dir, l.name)
		b, err := readAll(fs, path)
		if errors.Is(err, os.ErrNotExist) {
			continue // Pebble says what is missing
		}
		if err != nil {
			return err
		}
		if at, ok := damage(b, l.logNum, l.wal); ok {
			return fmt.Errorf("%w: %s holds damaged bytes at byte %d, and a record after them proves they had been synced: this is not the torn tail "+
				"of a crash, and Pebble would start without everything written from there on, acknowledged writes included. Check the disk (dmesg, smartctl -a). "+
				"Then restore DATA_DIR from a backup and run `wail table reconcile TABLE` for every table%s",
				ErrDamagedLog, path, at, acceptLoss(l.wal, at, path))
		}
	}
	return nil
}

// acceptLoss is the way to start without the writes after a WAL's damage
// (none for the MANIFEST: without its later edits the store loses files).
func acceptLoss(wal bool, at int, path string) string {
	if !wal {
		return ""
	}
	return fmt.Sprintf("; or, to accept the loss of the store's writes from that position on, stop wail, copy the file aside, "+
		"run `truncate -s %d %s`, start wail and run `wail table reconcile TABLE` for every table", at, path)
}

func readAll(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// damage returns the first position of b that holds no valid chunk of log
// logNum, when a valid chunk further on proves it had been synced (for a
// WAL: one of the sync-offset format whose offset lies past it; for the
// MANIFEST: one that starts a record, encoding full or first).
func damage(b []byte, logNum uint32, wal bool) (int, bool) {
	bad := 0
	for bad < len(b) {
		if end, _, ok := logChunk(b, bad, logNum); ok {
			bad = end
			continue
		}
		blockEnd := (bad/logBlockSize + 1) * logBlockSize
		if blockEnd-bad >= syncHeaderSize || !zeros(b[bad:min(blockEnd, len(b))]) {
			break
		}
		bad = blockEnd // the block's padding
	}
	if bad >= len(b) {
		return 0, false
	}
	for p := bad + 1; p+legacyHeaderSize <= len(b); p++ {
		if enc := b[p+6]; enc == 0 || enc > 12 || wal && enc < 9 {
			continue // cheap tests first: most positions are no header
		}
		if _, synced, ok := logChunk(b, p, logNum); ok && (wal && synced > uint64(bad) || !wal && b[p+6] <= 2) {
			return bad, true
		}
	}
	return 0, false
}

// headerSize is the header length of a chunk of encoding enc (that of the
// sync-offset format for encodings that are none).
func headerSize(enc byte) int {
	switch {
	case enc >= 1 && enc <= 4:
		return legacyHeaderSize
	case enc >= 5 && enc <= 8:
		return recycHeaderSize
	}
	return syncHeaderSize
}

func zeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// logChunk checks the chunk whose header is at pos: of a known encoding,
// of log logNum (when its format has one), inside its block and b, its
// checksum right. It returns where the chunk ends and the synced offset it
// carries (0 unless of the sync-offset format).
func logChunk(b []byte, pos int, logNum uint32) (end int, synced uint64, ok bool) {
	if pos+legacyHeaderSize > len(b) {
		return 0, 0, false
	}
	enc := b[pos+6]
	if enc == 0 || enc > 12 {
		return 0, 0, false
	}
	size := headerSize(enc)
	if pos+size > len(b) || size > legacyHeaderSize && binary.LittleEndian.Uint32(b[pos+7:]) != logNum {
		return 0, 0, false
	}
	end = pos + size + int(binary.LittleEndian.Uint16(b[pos+4:]))
	if end > len(b) || end > (pos/logBlockSize+1)*logBlockSize {
		return 0, 0, false
	}
	c := crc32.Checksum(b[pos+6:end], logCRC)
	if (c>>15|c<<17)+0xa282ead8 != binary.LittleEndian.Uint32(b[pos:]) {
		return 0, 0, false
	}
	if size == syncHeaderSize {
		synced = binary.LittleEndian.Uint64(b[pos+11:])
	}
	return end, synced, true
}
