package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// RepairReport is what Repair checked, removed and replaced.
type RepairReport struct {
	Partitions   int            // partitions checked
	Segments     int            // segment files checked
	Bytes        int64          // bytes checked
	Lost         []Lost         // ranges removed by this repair
	OffsetsFiles int            // consumer groups' offsets files checked
	Offsets      []OffsetsReset // offsets files replaced by this repair
	LostFiles    []LostRebuilt  // damaged #lost files rebuilt by this repair
}

// LostRebuilt is a partition's #lost file that did not read, which Repair
// copied to a quarantine file and wrote again from the gaps between the
// partition's segments (listed in RepairReport.Lost).
type LostRebuilt struct {
	File, Quarantine, Reason string
}

// Repair checks every batch (framing, CRC, records, offsets) of every
// segment of the log in dir, which no Log may have open, and removes what
// Open refuses: each damaged region is moved to a quarantine file next to
// its segment ("#quarantine-<segment base>-<position>"), the valid batches
// after it are moved to a segment file of their own, and the lost offsets
// are recorded in the partition's #lost file (so that Open accepts the gap
// and readers skip it) and returned. A gap between segments (a segment
// file lost) is recorded the same way. A consumer group's offsets file that
// Open refuses is copied to a quarantine file and replaced by one that
// starts the group at each partition's first retained offset
// (repairOffsets). A partition's #lost file that does not read is copied
// to "#quarantine-lost-<n>" and written again: the gaps between segments
// it listed are found again. Only FS, Logger and IndexIntervalBytes of opts are used. Segments missing
// at the end of a partition (missingErr) are not repaired: no file says
// which offsets they held, and Repair fails with Open's error, which says
// what to do. Nor are
// overlapping segments (one that ends past the next one's base): no file
// says which holds the true records, and Repair fails with Open's error.
//
// Nothing valid is removed: a batch is dropped only when it fails its
// checks (a whole, valid batch that starts past the expected offset is
// kept, and the offsets before it are listed as lost), and no group is
// moved past a record it had yet to read. Running Repair on a sound log
// changes nothing.
func Repair(dir string, opts Options) (*RepairReport, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	fsys := opts.FS
	lock, err := fsys.Lock(filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, fmt.Errorf("embedded: repair %s: is wail still running? %w", dir, err)
	}
	defer lock.Close()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: repair %s: %w", dir, err)
	}
	rep := &RepairReport{}
	for _, e := range ents {
		if !e.IsDir() || validateName("topic", e.Name()) != nil {
			continue
		}
		tdir := filepath.Join(dir, e.Name())
		m, err := readMeta(fsys, tdir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("embedded: repair %s: %w", dir, err)
		}
		starts := make([]int64, m.Partitions)
		for id := range m.Partitions {
			pr := partRepair{fs: fsys, topic: e.Name(), id: id, dir: filepath.Join(tdir, strconv.Itoa(int(id))), rep: rep,
				interval: opts.IndexIntervalBytes}
			if err := pr.run(); err != nil {
				return rep, fmt.Errorf("embedded: repair %s/%d: %w", e.Name(), id, err)
			}
			starts[id] = pr.start
			rep.Partitions++
		}
		if err := repairOffsets(fsys, e.Name(), tdir, starts, rep); err != nil {
			return rep, fmt.Errorf("embedded: repair %s: %w", e.Name(), err)
		}
	}
	for _, l := range rep.Lost {
		opts.Logger.Warn("embedded: repair removed offsets", "topic", l.Topic, "partition", l.Partition,
			"from", l.From, "to", l.To, "segment", l.Segment, "position", l.Position, "bytes", l.Bytes,
			"quarantine", l.Quarantine, "reason", l.Reason)
	}
	for _, f := range rep.LostFiles {
		opts.Logger.Warn("embedded: repair rebuilt a damaged #lost file from the gaps between segments", "file", f.File,
			"quarantine", f.Quarantine, "reason", f.Reason)
	}
	for _, o := range rep.Offsets {
		opts.Logger.Warn("embedded: repair replaced a damaged offsets file; the group starts again at each "+
			"partition's first retained offset", "topic", o.Topic, "group", o.Group, "file", o.File,
			"quarantine", o.Quarantine, "reason", o.Reason, "start", fmt.Sprint(o.Start))
	}
	return rep, nil
}

// span is a region of a segment: a run of valid batches with offsets
// [base, next), or a damaged region (next -1: up to the end).
type span struct {
	pos, end   int64
	base, next int64
	reason     string
}

type partRepair struct {
	fs       vfs.FS
	topic    string
	id       int32
	dir      string
	rep      *RepairReport
	lost     lostRanges
	found    lostRanges // added by this repair
	interval int64      // the log's index interval, as Open uses it
	start    int64      // the partition's first retained offset, as Open finds it
}

func (pr *partRepair) run() error {
	// Segments missing at the end are not repaired (no file says which
	// offsets they held), but said, as Open says them: a repair that found
	// nothing to do would leave a log Open refuses.
	bases, sealedTail, err := listSegments(pr.fs, pr.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return missingErr(pr.dir, "the partition's directory is missing", nil)
	case err != nil:
		return err
	case len(sealedTail) > 0:
		return missingSegments(pr.dir, bases, sealedTail)
	case len(bases) == 0:
		return missingErr(pr.dir, "no segment file is left", nil)
	}
	if err := pr.lastNotSealed(bases[len(bases)-1]); err != nil {
		return err
	}
	// The repair keeps every segment file (a damaged one keeps its valid
	// start, maybe none), so the first one's base stays the start.
	pr.start = bases[0]
	rewrite := false // a damaged #lost, copied to a quarantine file
	if pr.lost, err = readLost(pr.fs, pr.dir); errors.Is(err, intentlog.ErrCorrupt) {
		// Nothing in it can be trusted; the gaps it listed are found
		// again below (the ranges open at their end only said why the
		// log went on below its old end, and are not needed).
		q, qerr := pr.quarantineLost()
		if qerr != nil {
			return qerr
		}
		pr.rep.LostFiles = append(pr.rep.LostFiles, LostRebuilt{File: filepath.Join(pr.dir, lostFile), Quarantine: q,
			Reason: stripCorrupt(err)})
		pr.lost, rewrite = nil, true
	} else if err != nil {
		return err
	}
	for i, base := range bases {
		limit := int64(math.MaxInt64)
		if i+1 < len(bases) {
			limit = bases[i+1]
		}
		end, err := pr.segment(base, limit)
		if err != nil {
			return err
		}
		if end > limit {
			// Not repaired (which segment holds the true records?), and
			// not a sound log either: Open refuses it.
			return overlapErr(segmentPath(pr.dir, base, logExt), end, segmentPath(pr.dir, limit, logExt), limit)
		}
		if limit != math.MaxInt64 && end < limit && !pr.lost.covers(end, limit) && !pr.found.covers(end, limit) {
			pr.found = append(pr.found, Lost{Topic: pr.topic, Partition: pr.id, From: end, To: limit,
				Segment: segmentPath(pr.dir, base, logExt), Position: -1,
				Reason: fmt.Sprintf("no segment holds offsets [%d, %d)", end, limit)})
		}
	}
	if len(pr.found) == 0 && !rewrite {
		return nil
	}
	if err := pr.fs.SyncDir(pr.dir); err != nil {
		return err
	}
	if err := writeLost(pr.fs, pr.dir, append(pr.lost, pr.found...)); err != nil {
		return err
	}
	pr.rep.Lost = append(pr.rep.Lost, pr.found...)
	return nil
}

// quarantineLost copies the partition's damaged #lost file to
// "#quarantine-lost-<n>" (the first n not taken), durably.
func (pr *partRepair) quarantineLost() (string, error) {
	path := filepath.Join(pr.dir, lostFile)
	b, err := vfs.ReadFile(pr.fs, path)
	if err != nil {
		return "", err
	}
	for n := 1; ; n++ {
		q := filepath.Join(pr.dir, fmt.Sprintf("#quarantine-lost-%d", n))
		f, err := pr.fs.OpenFile(q, os.O_RDONLY, 0)
		if err == nil {
			_ = f.Close()
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := writeFileAtomic(pr.fs, q, b, false); err != nil {
			return "", fmt.Errorf("quarantine %s: %w", path, err)
		}
		return q, nil
	}
}

// lastNotSealed fails as Open does when the partition's last segment has
// an index that verifies against it (checkNotSealed): the segments after
// it are gone.
func (pr *partRepair) lastNotSealed(base int64) error {
	s := newSegment(pr.dir, base)
	f, err := pr.fs.OpenFile(s.logPath, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.checkNotSealed(pr.fs, f, pr.interval, pr.dir)
}

// segment checks one segment, whose offsets must stay below limit, and
// repairs it; it returns the offset after its last valid record.
func (pr *partRepair) segment(base, limit int64) (int64, error) {
	path := segmentPath(pr.dir, base, logExt)
	f, err := pr.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, err
	}
	pr.rep.Segments++
	pr.rep.Bytes += size
	spans, err := walkSpans(f, base, size, limit)
	if err != nil {
		return 0, err
	}
	end := base
	var good []span
	for _, s := range spans {
		if s.reason == "" {
			good = append(good, s)
			end = s.next
		}
	}
	if len(good) == len(spans) {
		return end, nil
	}
	for _, s := range spans {
		if s.reason == "" {
			continue
		}
		q := "" // offsets missing between two whole batches: no damaged byte
		if s.end > s.pos {
			q = filepath.Join(pr.dir, fmt.Sprintf("#quarantine-%020d-%d", base, s.pos))
			if err := copyRange(pr.fs, f, q, s.pos, s.end); err != nil {
				return 0, fmt.Errorf("quarantine %s [%d, %d): %w", path, s.pos, s.end, err)
			}
		}
		to := s.next
		if to == -1 && limit != math.MaxInt64 {
			to = limit
		}
		pr.found = append(pr.found, Lost{Topic: pr.topic, Partition: pr.id, From: s.base, To: to, Segment: path,
			Position: s.pos, Bytes: s.end - s.pos, Quarantine: q, Reason: s.reason})
	}
	// Valid runs after the first damage get segment files of their own, and
	// so does a first run that does not start at the segment's base.
	keep := int64(0)
	for i, s := range good {
		if i == 0 && s.pos == 0 && s.base == base {
			keep = s.end
			continue
		}
		if err := copyRange(pr.fs, f, segmentPath(pr.dir, s.base, logExt), s.pos, s.end); err != nil {
			return 0, fmt.Errorf("move valid batches [%d, %d) of %s: %w", s.base, s.next, path, err)
		}
	}
	if err := pr.fs.SyncDir(pr.dir); err != nil {
		return 0, err
	}
	if err := f.Truncate(keep); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := pr.fs.Remove(segmentPath(pr.dir, base, idxExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	return end, nil
}

// walkSpans splits a segment into runs of valid batches and damaged
// regions. A damaged region ends where the next valid batch with a
// plausible base offset (not below the run before, below limit) starts.
func walkSpans(f vfs.File, base, size, limit int64) ([]span, error) {
	var spans []span
	pos, expect := int64(0), base
	for pos < size {
		sc := &scan{base: base, interval: math.MaxInt64, next: expect, pos: pos, maxTS: math.MinInt64}
		err := sc.run(f, size, true)
		if sc.pos > pos {
			spans = append(spans, span{pos: pos, end: sc.pos, base: expect, next: sc.next})
		}
		if err == nil {
			break
		}
		if !errors.Is(err, intentlog.ErrCorrupt) {
			return nil, err
		}
		bad := span{pos: sc.pos, end: size, base: sc.next, next: -1, reason: stripCorrupt(err)}
		// Damage ends at the next valid batch; a whole batch that starts
		// past the expected offset is kept (the offsets before it are lost),
		// one that goes back is damage (its offsets are taken).
		q, h, ok, err := resumeRepair(f, sc.pos, size, sc.next, sc.next+1)
		if err != nil {
			return nil, err
		}
		if ok && h.base < limit {
			bad.end, bad.next = q, h.base
		}
		spans = append(spans, bad)
		pos, expect = bad.end, bad.next
	}
	return spans, nil
}

// copyRange writes bytes [from, to) of src to a new file at path, fsync'd.
func copyRange(fsys vfs.FS, src vfs.File, path string, from, to int64) error {
	dst, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, readChunk)
	for at := from; at < to && err == nil; at += int64(len(buf)) {
		n := min(int64(len(buf)), to-at)
		if _, err = src.ReadAt(buf[:n], at); err == nil {
			_, err = dst.WriteAt(buf[:n], at-from)
		}
	}
	if err == nil {
		err = dst.Sync()
	}
	return errors.Join(err, dst.Close())
}
