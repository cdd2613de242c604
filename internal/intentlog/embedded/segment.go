package embedded

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

const (
	logExt = ".log"
	idxExt = ".idx"
	// readChunk is how much a scan or reader reads per ReadAt.
	readChunk = 1 << 20
	// maxRelOffset bounds the records of a segment (relative offsets are u32).
	maxRelOffset = math.MaxUint32
)

// segment is one .log file and its sparse index.
type segment struct {
	base    int64
	logPath string
	idxPath string

	// Guarded by fileCache.mu: the open .log (nil while closed; read with
	// ReadAt, written only by the writer), its users, its place in the
	// cache's idle list, and whether it is gone for good.
	f         vfs.File
	users     int
	elem      *list.Element
	forgotten bool

	// Guarded by partition.mu.
	size  int64        // durable (visible) bytes
	next  int64        // offset after the last durable record
	maxTS int64        // newest durable timestamp (unix µs; MinInt64 when empty)
	index []indexEntry // appended only; readers use a snapshot
	refs  int          // readers currently using the segment
	dead  bool         // removed by retention; delete the files when refs drops to 0
}

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

func newSegment(dir string, base int64) *segment {
	return &segment{base: base, logPath: segmentPath(dir, base, logExt), idxPath: segmentPath(dir, base, idxExt)}
}

// segmentName reads a segment's file name as segmentPath writes it: 20
// digits, then .log or .idx. Any other name is not a segment's, though it
// may parse as a number ("99.log", "+0.log": a file left by someone
// else, which must neither be opened as a segment nor make a gap).
func segmentName(name string) (base int64, ext string, ok bool) {
	ext = filepath.Ext(name)
	digits := strings.TrimSuffix(name, ext)
	if (ext != logExt && ext != idxExt) || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" {
		return 0, "", false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, ext, err == nil
}

// listSegments returns the sorted base offsets of the .log files in dir and
// removes leftovers: temporary files and .idx files without a .log below
// the last .log (retention deletes a segment's .log first). It also returns
// the bases of the .idx files above the last .log's base (any, when there
// is no .log), and then the last .log's too, which it leaves alone: a segment's .idx is written when it is
// sealed, after the next segment's name was made durable, so each one says
// that a segment after it existed (missingSegments).
func listSegments(fsys vfs.FS, dir string) (bases, sealedTail []int64, err error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	logs := map[int64]bool{}
	var idxs []int64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = fsys.Remove(filepath.Join(dir, name))
			continue
		}
		base, ext, ok := segmentName(name)
		switch {
		case !ok || e.IsDir():
			continue
		case ext == logExt:
			logs[base] = true
		case ext == idxExt:
			idxs = append(idxs, base)
		}
	}
	bases = make([]int64, 0, len(logs))
	for b := range logs {
		bases = append(bases, b)
	}
	slices.Sort(bases)
	for _, b := range idxs {
		switch {
		case len(bases) == 0 || b > bases[len(bases)-1]:
			sealedTail = append(sealedTail, b)
		case !logs[b]:
			_ = fsys.Remove(segmentPath(dir, b, idxExt))
		}
	}
	if len(sealedTail) > 0 && len(bases) > 0 && slices.Contains(idxs, bases[len(bases)-1]) {
		// So that the error names every .idx to remove at once.
		sealedTail = append(sealedTail, bases[len(bases)-1])
	}
	slices.Sort(sealedTail)
	return bases, sealedTail, nil
}

// missingSegments is Open's error for a partition whose last segment has an
// .idx, or that has .idx files above its last segment (sealedTail, from
// listSegments): the segments after them are gone (deleted while wail was
// stopped, or lost by the disk), and opening would hand their offsets to
// new records.
func missingSegments(dir string, bases, sealedTail []int64) error {
	if len(bases) == 0 {
		return missingErr(dir, "no segment file is left", sealedTail)
	}
	what := fmt.Sprintf("the segment files after %s are missing", segmentPath(dir, sealedTail[len(sealedTail)-1], logExt))
	return missingErr(dir, what, sealedTail)
}

// missingErr says that segment files of the partition in dir are gone, and
// what to do. sealed are the bases of the .idx files that show it (a later
// segment existed); none when the partition has no segment file left,
// which CreateTopic never leaves (it makes the first one durable before it
// writes meta).
func missingErr(dir, what string, sealed []int64) error {
	var why, fix []string
	for _, b := range sealed {
		why = append(why, segmentPath(dir, b, idxExt))
		fix = append(fix, "rm "+segmentPath(dir, b, idxExt))
	}
	because := "every partition has a segment file from its creation on"
	if len(why) > 0 {
		because = strings.Join(why, ", ") + " says a later segment existed: an index is written when its segment " +
			"is sealed by the next one"
	}
	after := "the partition then goes on after the records left"
	if !strings.HasPrefix(what, "the segment files after") {
		fix = append(fix, "mkdir -p "+dir, "touch "+segmentPath(dir, 0, logExt))
		after = "the partition then starts again, empty, at offset 0"
	}
	return fmt.Errorf("%w: partition %s: %s (%s): they were deleted while wail was stopped, or lost by the disk, "+
		"and opening the partition would give their offsets to new records. Restore the missing files from a "+
		"backup; or, to accept the loss of the records they held, stop wail and run `%s`: %s, the consumer "+
		"groups past them are moved back with an error at the start, and `wail table reconcile TABLE` (for a "+
		"table's intents topic) rebuilds the events of the keys written since",
		intentlog.ErrCorrupt, dir, what, because, strings.Join(fix, " && "), after)
}

// createSegment creates an empty active segment and fsyncs the directory so
// that the new file survives a crash. Its .idx is written when it is
// sealed.
func createSegment(c *fileCache, dir string, base int64, noSync bool) (*segment, error) {
	s := newSegment(dir, base)
	s.next, s.maxTS = base, math.MinInt64
	err := c.create(s, func() (vfs.File, error) {
		return c.fs.OpenFile(s.logPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	})
	if err != nil {
		return nil, err
	}
	defer c.release(s)
	if !noSync {
		if err := c.fs.SyncDir(dir); err != nil {
			// Remove the file, so that a retry can create it again.
			_ = c.forget(s)
			_ = c.fs.Remove(s.logPath)
			return nil, err
		}
	}
	return s, nil
}

// openSealed opens a segment that is not the last one of its partition. Its
// index is trusted after verification: monotonic, in bounds, its last entry
// matching the batch it points at, and a header walk from there reaching the
// end of the file without skipping an index entry. Otherwise the index is
// rebuilt from a header walk over the whole file. A segment whose framing is
// broken still opens: readers get ErrCorrupt when they reach the damage.
func openSealed(c *fileCache, dir string, base, nextBase, interval int64, lost lostRanges, log *slog.Logger) (*segment, error) {
	s := newSegment(dir, base)
	f, err := c.acquire(s)
	if err != nil {
		return nil, err
	}
	defer c.release(s)
	if s.size, err = f.Size(); err != nil {
		return nil, err
	}
	sc, err := s.verifyIndex(c.fs, f, interval)
	if err != nil && !errors.Is(err, errRebuild) {
		return nil, err
	}
	rebuilt := err != nil
	if rebuilt {
		if sc, err = s.rebuildIndex(f, interval); err != nil {
			return nil, err
		}
	}
	s.index, s.maxTS, s.next = sc.index, sc.maxTS, sc.next
	if sc.next > nextBase {
		// No #lost range excuses an overlap: it is no gap, and the next
		// segment would hide records of this one.
		return nil, overlapErr(s.logPath, sc.next, segmentPath(dir, nextBase, logExt), nextBase)
	}
	if sc.next < nextBase && !lost.covers(sc.next, nextBase) {
		return nil, corruptSegment(s.logPath, sc.pos, sc.next, fmt.Errorf("segment ends at offset %d", sc.next),
			fmt.Sprintf("the next segment starts at offset %d, so offsets [%d, %d) are missing", nextBase, sc.next, nextBase))
	}
	if rebuilt {
		// Only now: an index written for a segment refused above would
		// say that a later segment existed, and once the operator removed
		// the next segment (an empty leftover of a failed roll, as the
		// overlap error says) the next Open would refuse the partition as
		// segments missing.
		if werr := writeIndexFile(c.fs, s.idxPath, sc.index); werr != nil {
			log.Warn("embedded: cannot write index", "file", s.idxPath, "err", werr)
		}
		log.Info("embedded: rebuilt segment index", "file", s.idxPath, "entries", len(sc.index))
	}
	return s, nil
}

// overlapErr is the error of a segment (path) that ends at offset end,
// past the start of the next one (next, at nextBase): Open refuses it, and
// Repair cannot tell which of the two holds the true records.
func overlapErr(path string, end int64, next string, nextBase int64) error {
	return fmt.Errorf("%w: %s ends at offset %d, past the start of the next segment %s (offset %d): "+
		"the segments overlap; if that one is empty, it is what a segment roll that failed left behind: "+
		"stop wail and remove it; else restore DATA_DIR from a backup (`wail log repair` does not resolve an overlap)",
		intentlog.ErrCorrupt, path, end, next, nextBase)
}

var errRebuild = errors.New("rebuild index")

// verifyIndex loads and checks the .idx of a sealed segment and walks the
// batches after its last entry. It fails with errRebuild when the index must
// be rebuilt.
func (s *segment) verifyIndex(fsys vfs.FS, f vfs.File, interval int64) (*scan, error) {
	b, ok, err := readIndexFile(fsys, s.idxPath)
	if err != nil || !ok || len(b) == 0 {
		return nil, errRebuild
	}
	entries, err := parseIndex(b, s.size)
	if err != nil {
		return nil, errRebuild
	}
	last := entries[len(entries)-1]
	sc := &scan{base: s.base, interval: interval, index: entries, pos: int64(last.pos),
		next: s.base + int64(last.rel), maxTS: math.MinInt64}
	var hdr [batchHeaderLen]byte
	if _, err := f.ReadAt(hdr[:], sc.pos); err != nil {
		return nil, errRebuild
	}
	if _, err := frameSize(hdr[:]); err != nil || int64(binary.BigEndian.Uint64(hdr[21:])) != last.ts {
		return nil, errRebuild
	}
	err = sc.run(f, s.size, false)
	switch {
	case errors.Is(err, intentlog.ErrCorrupt):
		return nil, errRebuild
	case err != nil:
		return nil, err
	case sc.added > 0 || sc.pos != s.size:
		return nil, errRebuild
	}
	return sc, nil
}

// rebuildIndex walks all batch headers of a sealed segment and builds its
// index (openSealed writes it to the .idx once the segment passed its
// checks).
func (s *segment) rebuildIndex(f vfs.File, interval int64) (*scan, error) {
	sc := &scan{base: s.base, interval: interval, next: s.base, maxTS: math.MinInt64}
	err := sc.run(f, s.size, false)
	if err != nil && !errors.Is(err, intentlog.ErrCorrupt) {
		return nil, err
	}
	if err != nil {
		return nil, corruptSegment(s.logPath, sc.pos, sc.next, err, "the segment is sealed (not the last one)")
	}
	return sc, nil
}

// openActive opens the last segment of a partition: it verifies every batch
// and truncates a torn tail. Its index is rebuilt in memory; a stale .idx
// is removed (it is written when the segment is sealed).
func openActive(c *fileCache, dir string, base, interval int64, log *slog.Logger) (*segment, error) {
	s := newSegment(dir, base)
	f, err := c.acquire(s)
	if err != nil {
		return nil, err
	}
	defer c.release(s)
	if err := s.checkNotSealed(c.fs, f, interval, dir); err != nil {
		return nil, err
	}
	if err := s.recover(f, interval, log); err != nil {
		return nil, err
	}
	if err := c.fs.Remove(s.idxPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return s, nil
}

// checkNotSealed fails with missingErr when the last segment has an .idx
// that verifies against it as a sealed segment's (verifyIndex): it was
// written when a roll sealed it, once the next segment's name was durable,
// and that segment is gone. An .idx that does not verify (torn: it is not
// fsync'd; or left by something else) is stale, and openActive removes it.
func (s *segment) checkNotSealed(fsys vfs.FS, f vfs.File, interval int64, dir string) error {
	_, ok, err := readIndexFile(fsys, s.idxPath)
	if err != nil || !ok {
		return err
	}
	if s.size, err = f.Size(); err != nil {
		return err
	}
	sc, err := s.verifyIndex(fsys, f, interval)
	switch {
	case errors.Is(err, errRebuild):
		return nil
	case err != nil:
		return err
	}
	return missingErr(dir, fmt.Sprintf("the segment files after %s (from offset %d on) are missing", s.logPath, sc.next),
		[]int64{s.base})
}

// recover verifies the active segment and truncates a torn tail (Open
// makes the file durable afterwards: syncRecovered).
func (s *segment) recover(f vfs.File, interval int64, log *slog.Logger) error {
	size, err := f.Size()
	if err != nil {
		return err
	}
	sc := &scan{base: s.base, interval: interval, next: s.base, maxTS: math.MinInt64}
	err = sc.run(f, size, true)
	if err != nil && !errors.Is(err, intentlog.ErrCorrupt) {
		return err
	}
	if err != nil {
		// Not a torn tail if the bad batch is whole (only its offsets are
		// wrong) or a valid batch follows it.
		q, h, found, ferr := resumeAt(f, sc.pos, size, sc.next, math.MinInt64)
		if ferr != nil {
			return ferr
		}
		if found {
			return corruptSegment(s.logPath, sc.pos, sc.next, err,
				fmt.Sprintf("a valid batch (offset %d) starts at position %d", h.base, q))
		}
		if whole, werr := wholeToEnd(f, sc.pos, size); werr != nil {
			return werr
		} else if whole {
			return corruptSegment(s.logPath, sc.pos, sc.next, err,
				"the batch is whole (its CRC matches its bytes up to the file end): its magic byte or length field was damaged")
		}
		if hd, herr := headerDamaged(f, sc.pos, size, sc.next); herr != nil {
			return herr
		} else if hd {
			return corruptSegment(s.logPath, sc.pos, sc.next, err,
				"the batch's records are whole, its base offset or record count damaged")
		}
		if terr := f.Truncate(sc.pos); terr != nil {
			return fmt.Errorf("truncate torn tail: %w", terr)
		}
		log.Warn("embedded: truncated the torn tail of the active segment (a write cut short by a crash; never acknowledged)",
			"file", s.logPath, "position", sc.pos, "bytes", size-sc.pos, "offset", sc.next, "reason", err)
	}
	s.size, s.next, s.maxTS, s.index = sc.pos, sc.next, sc.maxTS, sc.index
	return nil
}
