package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// appendReq is one Append call's records for one partition, pre-encoded by
// the appender (with timestamp delta 0) so that the writer never touches the
// caller's records.
type appendReq struct {
	body  []byte
	count int
	done  chan struct{} // closed by the writer once base, ts and err are set
	base  int64
	ts    int64
	err   error
}

// partition is one partition of a topic: its segments and its writer.
type partition struct {
	log   *Log
	topic string
	id    int32
	dir   string
	topts intentlog.TopicOptions // guarded by mu (CreateTopic changes it)

	// qmu guards the append queue.
	qmu      sync.Mutex
	queue    []*appendReq
	qclosed  bool          // Close began: refuse new appends
	broken   error         // a failed fsync or I/O error: refuse all appends
	noSpace  error         // the last write failed on a full disk
	noSpaceN uint64        // counts setNoSpace calls: a probe clears only those before it
	wake     chan struct{} // cap 1: the queue is not empty
	stop     chan struct{} // closed by Close
	exited   chan struct{} // closed when the writer returned
	deleted  atomic.Bool   // DeleteTopic: fail with errDeleted, not ErrClosed
	// readFaults are where the last read failed with an I/O error and
	// where the last read found damage (readhealth.go); readFailing says
	// whether either is set, without the lock.
	readFaults  [faultKinds]readFault
	readFailing atomic.Bool

	// mu guards the segment list, the bounds and what readers see.
	mu     sync.Mutex
	segs   []*segment    // by base offset; the last one is active
	start  int64         // first retained offset
	end    int64         // next offset; everything below is durable
	notify chan struct{} // closed and replaced after each durable write
	closed bool
	// dead are the segments retention removed whose files are not deleted
	// yet, oldest first (reap).
	dead []*segment

	// reapMu serializes reap: files are deleted oldest first, one at a
	// time, so that a crash never leaves a younger segment deleted and an
	// older one on disk (a gap that Open refuses).
	reapMu sync.Mutex
	// reindexMu serializes reindex: one rebuild of a sealed segment's index
	// at a time.
	reindexMu sync.Mutex

	// Owned by the writer goroutine.
	active  *segment
	wpos    int64 // bytes in the active segment (== active.size)
	nextOff int64 // == end
	lastTS  int64 // newest timestamp written; timestamps never go back
	// rollFailed: the last roll failed. A file named after nextOff may be
	// left (its remove failed, or is not durable), so the next batch rolls
	// too, even one that would fit: in the active segment it would take
	// that offset, and the log would overlap the file.
	rollFailed bool
	buf        []byte
	taken      []*appendReq
}

// openPartition opens or creates a partition directory and recovers it.
func openPartition(l *Log, topic, topicDir string, id int32, topts intentlog.TopicOptions, create bool) (*partition, error) {
	p := &partition{log: l, topic: topic, id: id, dir: filepath.Join(topicDir, strconv.Itoa(int(id))), topts: topts,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), exited: make(chan struct{}), notify: make(chan struct{})}
	if create {
		if err := l.fs.MkdirAll(p.dir, 0o755); err != nil {
			return nil, err
		}
	}
	if err := p.openSegments(create); err != nil {
		for _, s := range p.segs {
			_ = l.files.forget(s)
		}
		return nil, err
	}
	p.active = p.segs[len(p.segs)-1]
	p.start, p.end = p.segs[0].base, p.active.next
	p.wpos, p.nextOff = p.active.size, p.end
	p.lastTS = math.MinInt64
	for _, s := range p.segs {
		p.lastTS = max(p.lastTS, s.maxTS)
	}
	l.stamped(p.lastTS)
	return p, nil
}

// openSegments opens the partition's segments, or creates its first one
// (create). A partition of a topic with meta always has a segment:
// CreateTopic made the first one durable before it wrote meta.
func (p *partition) openSegments(create bool) error {
	o := &p.log.opts
	bases, sealedTail, err := listSegments(p.log.fs, p.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !create:
		return missingErr(p.dir, "the partition's directory is missing", nil)
	case err != nil:
		return err
	case len(sealedTail) > 0:
		return missingSegments(p.dir, bases, sealedTail)
	case len(bases) == 0 && !create:
		return missingErr(p.dir, "no segment file is left", nil)
	}
	if len(bases) == 0 {
		s, err := createSegment(p.log.files, p.dir, 0, o.NoSync)
		if err != nil {
			return err
		}
		p.segs = append(p.segs, s)
		return nil
	}
	lost, err := readLost(p.log.fs, p.dir)
	if errors.Is(err, intentlog.ErrCorrupt) {
		return fmt.Errorf("%w; %s", err, lostRepairHint)
	}
	if err != nil {
		return err
	}
	for i, base := range bases[:len(bases)-1] {
		s, err := openSealed(p.log.files, p.dir, base, bases[i+1], o.IndexIntervalBytes, lost, o.Logger)
		if err != nil {
			return err
		}
		p.segs = append(p.segs, s)
	}
	s, err := openActive(p.log.files, p.dir, bases[len(bases)-1], o.IndexIntervalBytes, o.Logger)
	if err != nil {
		return err
	}
	p.segs = append(p.segs, s)
	return nil
}

// enqueue hands r to the writer.
func (p *partition) enqueue(r *appendReq) error {
	p.qmu.Lock()
	switch {
	case p.qclosed:
		p.qmu.Unlock()
		return p.closedErr()
	case p.broken != nil:
		p.qmu.Unlock()
		return p.broken
	}
	p.queue = append(p.queue, r)
	p.qmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// run is the writer goroutine: it commits the queue one batch per round
// until Close, then fails what is still queued with ErrClosed.
func (p *partition) run() {
	defer close(p.exited)
	for {
		select {
		case <-p.stop:
			p.drain()
			return
		case <-p.wake:
		}
		for !p.stopping() && p.round() {
		}
	}
}

func (p *partition) stopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

func (p *partition) drain() {
	p.qmu.Lock()
	q := p.queue
	p.queue, p.qclosed = nil, true
	p.qmu.Unlock()
	for _, r := range q {
		r.err = p.closedErr()
		close(r.done)
	}
}

// take removes from the queue what fits in one batch (at least one request).
func (p *partition) take() []*appendReq {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	size, n := int64(batchHeaderLen), 0
	for ; n < len(p.queue); n++ {
		l := int64(len(p.queue[n].body))
		if n > 0 && size+l > p.log.opts.MaxBatchBytes {
			break
		}
		size += l
	}
	p.taken = append(p.taken[:0], p.queue[:n]...)
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	return p.taken
}

// round commits one batch and wakes its appenders; it reports whether there
// was anything to do.
func (p *partition) round() bool {
	reqs := p.take()
	if len(reqs) == 0 {
		return false
	}
	base, ts, err := p.commit(reqs)
	for _, r := range reqs {
		if err != nil {
			r.err = err
		} else {
			r.base, r.ts = base, ts
			base += int64(r.count)
		}
		close(r.done)
	}
	clear(p.taken)
	return true
}

// commit writes reqs as one batch, fsyncs it and publishes it to readers. It
// returns the batch's base offset and timestamp.
func (p *partition) commit(reqs []*appendReq) (int64, int64, error) {
	p.qmu.Lock()
	broken := p.broken
	p.qmu.Unlock()
	if broken != nil {
		return 0, 0, broken
	}
	count, size := 0, int64(batchHeaderLen)
	for _, r := range reqs {
		count += r.count
		size += int64(len(r.body))
	}
	if err := p.maybeRoll(size, count); err != nil {
		err = storageErr(fmt.Errorf("roll segment in %s: %w", p.dir, err))
		if errors.Is(err, intentlog.ErrNoSpace) {
			return 0, 0, p.setNoSpace(err)
		}
		return 0, 0, p.setBroken(err)
	}
	ts := max(p.log.opts.Now().UnixMicro(), p.lastTS, p.log.lastTS.Load())
	buf := beginBatch(p.buf[:0])
	for _, r := range reqs {
		buf = append(buf, r.body...)
	}
	base := p.nextOff
	finishBatch(buf, base, count, ts)
	seg, pos := p.active, p.wpos
	f, err := p.log.files.acquire(seg)
	if err != nil {
		err = storageErr(fmt.Errorf("open %s: %w", seg.logPath, err))
		if outOfFiles(err) {
			// The process's condition, not the disk's: nothing was
			// written, and the next append opens it again.
			return 0, 0, err
		}
		// The segment holds acknowledged records and cannot be read (an
		// I/O error, the file gone from under the log): stop, as on a
		// failed write (TestActiveSegmentReopenFails).
		return 0, 0, p.setBroken(err)
	}
	defer p.log.files.release(seg)
	if _, err := f.WriteAt(buf, pos); err != nil {
		return 0, 0, p.writeFailed(f, seg, pos, err)
	}
	if !p.log.opts.NoSync {
		if err := p.sync(f); err != nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages and cleared the error: the file cannot be trusted. Cut
			// the batch off (best effort, so that a reopen in this process
			// does not read it back from the page cache) and stop.
			_ = f.Truncate(pos)
			return 0, 0, p.setBroken(fmt.Errorf("%w: sync of %s failed: %w", intentlog.ErrStorage, seg.logPath, err))
		}
	}
	p.publish(seg, pos, int64(len(buf)), count, ts)
	p.clearNoSpace()
	if cap(buf) <= 4<<20 {
		p.buf = buf[:0]
	} else {
		p.buf = nil
	}
	return base, ts, nil
}

// sync makes the batch just written to f durable: in the log's next
// syncfs round (sync.go), or with an fsync of f.
func (p *partition) sync(f vfs.File) error {
	if p.log.syncer != nil {
		return p.log.syncer.sync(f)
	}
	return f.Sync()
}

// writeFailed handles a failed write of the batch at pos: whatever part of
// it reached the file is cut off (readers never saw it: they stop at the
// published size), so the next batch is written at pos again. A full disk
// leaves the partition taking appends; any other error, or a failed
// truncate, breaks it.
func (p *partition) writeFailed(f vfs.File, seg *segment, pos int64, err error) error {
	if terr := f.Truncate(pos); terr != nil {
		return p.setBroken(fmt.Errorf("%w: write %s at %d: %w; truncating back failed: %v",
			intentlog.ErrStorage, seg.logPath, pos, err, terr))
	}
	err = storageErr(fmt.Errorf("at position %d: %w", pos, err))
	if errors.Is(err, intentlog.ErrNoSpace) {
		return p.setNoSpace(err)
	}
	return p.setBroken(err)
}

// publish makes a durable batch visible: it updates the segment, the bounds
// and the index, and wakes waiting readers.
func (p *partition) publish(seg *segment, pos, n int64, count int, ts int64) {
	p.log.stamped(ts) // before a reader can see the batch
	var entry *indexEntry
	if k := len(seg.index); k == 0 || pos-int64(seg.index[k-1].pos) >= p.log.opts.IndexIntervalBytes {
		entry = &indexEntry{rel: uint32(p.nextOff - seg.base), pos: uint32(pos), ts: ts}
	}
	p.nextOff += int64(count)
	p.wpos, p.lastTS = pos+n, ts
	p.mu.Lock()
	if entry != nil {
		seg.index = append(seg.index, *entry)
	}
	seg.size, seg.next, seg.maxTS = p.wpos, p.nextOff, ts
	p.end = p.nextOff
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()
}

// maybeRoll starts a new segment when a batch of size bytes and count
// records does not fit in the active one, or the last roll failed, then
// applies retention.
func (p *partition) maybeRoll(size int64, count int) error {
	o := &p.log.opts
	old := p.active
	if p.wpos == 0 || (!p.rollFailed && p.wpos+size <= o.SegmentBytes && p.nextOff+int64(count)-old.base <= maxRelOffset) {
		return nil
	}
	s, err := createSegment(p.log.files, p.dir, p.nextOff, o.NoSync)
	p.rollFailed = err != nil
	if err != nil {
		return err
	}
	// The index of a sealed segment is written once, not fsync'd: Open
	// verifies it and rebuilds it when it is missing or wrong.
	if err := writeIndexFile(p.log.fs, old.idxPath, old.index); err != nil {
		o.Logger.Warn("embedded: cannot write index; it will be rebuilt on open", "file", old.idxPath, "err", err)
	}
	p.mu.Lock()
	p.segs = append(p.segs, s)
	p.mu.Unlock()
	p.active, p.wpos = s, 0
	p.applyRetention(o.Now())
	return nil
}

// shutdown stops accepting appends and tells the writer to stop.
func (p *partition) shutdown() {
	p.qmu.Lock()
	p.qclosed = true
	p.qmu.Unlock()
	close(p.stop)
}

// closeFiles closes every segment; call after the writer stopped. Once it
// returns, no reap deletes a file: the directory may then be renamed away
// and another topic of the name made.
func (p *partition) closeFiles() error {
	p.mu.Lock()
	p.closed = true
	segs := append(slices.Clone(p.dead), p.segs...) // the dead ones not deleted yet too
	p.mu.Unlock()
	// A reap deleting a file now finishes first.
	p.reapMu.Lock()
	//lint:ignore SA2001 waiting for the holder to let go is the point
	p.reapMu.Unlock()
	var errs []error
	for _, s := range segs {
		errs = append(errs, p.log.files.forget(s))
	}
	return errors.Join(errs...)
}

// release drops a reader's reference on s.
func (p *partition) release(s *segment) {
	p.mu.Lock()
	s.refs--
	gone := s.dead && s.refs == 0
	p.mu.Unlock()
	// Not waiting for a reap under way: a reader does not queue behind
	// another's deletions (what this one would free, the next retention
	// run deletes if the running reap passed it already).
	if gone && p.reapMu.TryLock() {
		p.reapLocked()
		p.reapMu.Unlock()
	}
}
