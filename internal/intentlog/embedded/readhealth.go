package embedded

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// A read of a partition that fails with an I/O error (a bad sector, a
// failing device, a segment file gone) changes nothing and breaks nothing:
// the caller gets ErrStorage and may read again. But the partition's
// readers (the resolver, subscriptions) are stuck while it lasts, so it
// shows in Health as ErrReadFailing, as a failed append does. Like a full
// disk it recovers by itself: a read that gets past the failed position
// of the segment again clears it, and so does the read probe, which every
// SpaceProbeInterval reads again where the last failure was (a reader
// may never come back: a subscriber gone, a resolver waiting out its
// backoff); a read elsewhere in the partition does not, or a healthy
// segment read by one reader would hide a bad one another reader is stuck
// on. A segment retention removed takes its failure with it.

// readFault is where a partition's last failed read was.
type readFault struct {
	err error
	seg *segment
	pos int64
	n   uint64 // counts failures: a probe clears only the one it read for
}

// readFailed records a failed read of s at pos, when err is the disk's
// (not damage, not Close, not the process out of descriptors).
func (p *partition) readFailed(s *segment, pos int64, err error) {
	if !errors.Is(err, intentlog.ErrStorage) || errors.Is(err, intentlog.ErrCorrupt) ||
		errors.Is(err, intentlog.ErrClosed) || outOfFiles(err) {
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	p.qmu.Lock()
	first := p.readFault.err == nil
	p.readFault = readFault{err: fmt.Errorf("%w: %w", ErrReadFailing, err), seg: s, pos: pos, n: p.readFault.n + 1}
	p.readFailing.Store(true)
	p.qmu.Unlock()
	if first {
		p.log.reportHealth()
	}
}

// readOK records a read of s that got through [from, to): it clears the
// failure recorded there.
func (p *partition) readOK(s *segment, from, to int64) {
	if !p.readFailing.Load() {
		return
	}
	p.qmu.Lock()
	f := p.readFault
	p.qmu.Unlock()
	if f.seg == s && from <= f.pos && f.pos < to {
		p.clearReadFault(f.n)
	}
}

// clearReadFault clears the n-th failure, unless a later one replaced it.
func (p *partition) clearReadFault(n uint64) {
	p.qmu.Lock()
	ok := p.readFault.err != nil && p.readFault.n == n
	if ok {
		p.readFault = readFault{n: n}
		p.readFailing.Store(false)
	}
	p.qmu.Unlock()
	if ok {
		p.log.reportHealth()
	}
}

// probeReads, called every SpaceProbeInterval, reads again where each
// partition's last read failed.
func (l *Log) probeReads() {
	l.mu.RLock()
	var failing []*partition
	for _, t := range l.topics {
		for _, p := range t.parts {
			if p.readFailing.Load() {
				failing = append(failing, p)
			}
		}
	}
	l.mu.RUnlock()
	for _, p := range failing {
		p.probeRead()
	}
}

// probeRead reads up to a reader's chunk at the failed position, and clears
// the failure when that succeeds or its segment is gone.
func (p *partition) probeRead() {
	p.qmu.Lock()
	f := p.readFault
	p.qmu.Unlock()
	if f.err == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	live := !f.seg.dead && slices.Contains(p.segs, f.seg)
	if live {
		f.seg.refs++
	}
	size := f.seg.size
	p.mu.Unlock()
	if !live {
		p.clearReadFault(f.n)
		return
	}
	defer p.release(f.seg)
	file, err := p.log.files.acquire(f.seg)
	if err != nil {
		return
	}
	defer p.log.files.release(f.seg)
	buf := make([]byte, max(min(readerChunk, size-f.pos), 0))
	if len(buf) > 0 {
		if _, err := file.ReadAt(buf, f.pos); err != nil && err != io.EOF {
			return
		}
	}
	p.clearReadFault(f.n)
}
