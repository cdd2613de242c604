package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// The .idx of a sealed segment is not fsync'd, and Open checks only its
// order, its bounds and its last entry (checking every entry would read
// the whole log at every start). An entry in the middle can still be wrong:
// a filesystem that shows stale blocks of an unsynced file after a power
// loss, or bit rot. A wrong entry must neither fail a read of sound data
// with ErrCorrupt (`wail log repair` finds nothing wrong in the .log and
// would not clear it) nor make OffsetForTime skip records. So a read that
// starts at an index entry checks that the batch there is the one the
// entry names (base offset and first timestamp); when it is not, the
// segment's index is rebuilt from its batches, the source of truth, and
// the read starts again (TestStaleIndexEntry).

// errStaleIndex: the batch at an index entry's position is not the one the
// entry names.
// It wraps ErrCorrupt: the read retries past it, and one that escapes
// still says that the data do not match.
var errStaleIndex = fmt.Errorf("%w: index entry does not match its batch", intentlog.ErrCorrupt)

// matchesEntry reports whether the batch whose first bytes are hdr is the
// one index entry e of the segment based at base names.
func matchesEntry(hdr []byte, base int64, e indexEntry) bool {
	return len(hdr) >= batchHeaderLen && hdr[0] == batchMagic &&
		int64(binary.BigEndian.Uint64(hdr[9:])) == base+int64(e.rel) &&
		int64(binary.BigEndian.Uint64(hdr[21:])) == e.ts
}

// reindex rebuilds the index of s after a read found an entry of index
// (the snapshot it used) that does not match its batch; it returns the
// index to read with. The active segment's index is the writer's, built
// as it wrote: a mismatch there is damage (activeMismatch), and so is one
// that the rebuilt index repeats.
func (p *partition) reindex(s *segment, index []indexEntry) ([]indexEntry, error) {
	p.reindexMu.Lock()
	defer p.reindexMu.Unlock()
	p.mu.Lock()
	active, size, cur := p.segs[len(p.segs)-1] == s, s.size, s.index
	p.mu.Unlock()
	if active {
		return nil, p.activeMismatch(s, index, size)
	}
	if len(cur) == 0 || len(cur) != len(index) || &cur[0] != &index[0] {
		return cur, nil // another read rebuilt it meanwhile
	}
	f, err := p.log.files.acquire(s)
	if err != nil {
		// A read that fails with an I/O error shows in Health (readhealth.go),
		// at the segment's start, where the walk would begin.
		err = storageErr(err)
		p.readFailed(s, 0, err)
		return nil, err
	}
	defer p.log.files.release(s)
	sc := &scan{base: s.base, interval: p.log.opts.IndexIntervalBytes, next: s.base, maxTS: math.MinInt64}
	if err := sc.run(f, size, false); err != nil {
		p.readFailed(s, sc.pos, storageErr(err))
		if errors.Is(err, intentlog.ErrCorrupt) {
			return nil, fmt.Errorf("%s at position %d: %w", s.logPath, sc.pos, err)
		}
		return nil, storageErr(err)
	}
	if slices.Equal(sc.index, index) {
		return nil, fmt.Errorf("%s: %w, and a walk of its batches finds the same index", s.logPath, errStaleIndex)
	}
	p.mu.Lock()
	s.index = sc.index
	dead := s.dead
	p.mu.Unlock()
	if !dead {
		if err := writeIndexFile(p.log.fs, s.idxPath, sc.index); err != nil {
			// The stale file stays (written aside, then renamed): the next
			// start does not see it, and a read rebuilds it again.
			p.log.opts.Logger.Warn("embedded: cannot write a rebuilt index; the stale one stays on disk and reads rebuild it again. "+
				"Check the disk (df -h, dmesg)", "file", s.idxPath, "err", err)
		}
	}
	p.log.opts.Logger.Info("embedded: rebuilt a segment index that did not match its segment", "file", s.idxPath,
		"entries", len(sc.index))
	return sc.index, nil
}

// activeMismatch finds the batch of the active segment s that does not
// match the writer's entry of index for it (the first one; size is the
// part readers see), records it as damage (ErrReadCorrupt, as a read that
// failed to decode it would) and returns the read's error.
func (p *partition) activeMismatch(s *segment, index []indexEntry, size int64) error {
	f, err := p.log.files.acquire(s)
	if err != nil {
		// Shown in Health as any read's I/O error, at the segment's start
		// (the first entry's batch), where the check would begin.
		err = storageErr(err)
		p.readFailed(s, 0, err)
		return err
	}
	defer p.log.files.release(s)
	var hdr [batchHeaderLen]byte
	for _, e := range index {
		pos := int64(e.pos)
		if pos >= size {
			break
		}
		n, err := f.ReadAt(hdr[:], pos)
		if n < len(hdr) && err != nil && err != io.EOF {
			err = storageErr(err)
			p.readFailed(s, pos, err)
			return fmt.Errorf("%s at position %d: %w", s.logPath, pos, err)
		}
		if !matchesEntry(hdr[:n], s.base, e) {
			err := corrupt("the batch there is not the one the writer indexed (offset %d, timestamp %d)", s.base+int64(e.rel), e.ts)
			p.readFailed(s, pos, err)
			return fmt.Errorf("%s at position %d: %w", s.logPath, pos, err)
		}
	}
	// Every entry matches now: the read that did not match saw other bytes.
	return fmt.Errorf("%s: %w", s.logPath, errStaleIndex)
}
