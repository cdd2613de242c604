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
//
// A read that finds damaged bytes (ErrCorrupt: a CRC mismatch, a bad
// magic byte in a sealed segment) shows as ErrReadCorrupt the same way,
// naming the segment file, the position and `wail log repair`: the
// partition's readers stop there until a person repairs the log. It
// clears the same ways (a read past the position, or the probe decoding
// the batch there, once the bytes read fine: a flaky controller, a file
// restored from a backup), and with the process, since a repair needs
// the log closed. Readers see only the published part of the active
// segment, never a torn tail a failed append cut off again, so damage
// they find is damage at rest. A stale index entry (errStaleIndex) of a
// sealed segment is not damage: the read rebuilds the index and goes on;
// in the active segment, whose index the writer built, a batch that does
// not match its entry is damage (activeMismatch).

// The kinds of read faults a partition records.
const (
	faultIO      = iota // ErrReadFailing
	faultCorrupt        // ErrReadCorrupt
	faultKinds
)

// readFault is where a partition's last failed read of a kind was.
type readFault struct {
	err error
	seg *segment
	pos int64
	n   uint64 // counts failures: a probe clears only the one it read for
	// gap: the read found the offset it wanted missing (offsetGap), which
	// the batch at pos does not show: the probe leaves it to the readers.
	gap bool
}

// readFailed records a failed read of s at pos, when err is the disk's or
// damage (not Close, not the process out of descriptors, not a stale
// index).
func (p *partition) readFailed(s *segment, pos int64, err error) {
	if errors.Is(err, intentlog.ErrClosed) || outOfFiles(err) || errors.Is(err, errStaleIndex) {
		return
	}
	var kind int
	switch {
	case errors.Is(err, intentlog.ErrCorrupt):
		kind, err = faultCorrupt, fmt.Errorf("%w: %s at position %d: %w; %s", ErrReadCorrupt, s.logPath, pos, err, RepairHint)
	case errors.Is(err, intentlog.ErrStorage):
		kind, err = faultIO, fmt.Errorf("%w: %w", ErrReadFailing, err)
	default:
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	p.qmu.Lock()
	f := &p.readFaults[kind]
	first := f.err == nil
	*f = readFault{err: err, seg: s, pos: pos, n: f.n + 1, gap: errors.As(err, new(offsetGap))}
	p.readFailing.Store(true)
	p.qmu.Unlock()
	if first {
		p.log.reportHealth()
	}
}

// readOK records a read of s that got through [from, to): it clears the
// failures recorded there.
func (p *partition) readOK(s *segment, from, to int64) {
	if !p.readFailing.Load() {
		return
	}
	p.qmu.Lock()
	faults := p.readFaults
	p.qmu.Unlock()
	for kind, f := range faults {
		if f.err != nil && f.seg == s && from <= f.pos && f.pos < to {
			p.clearReadFault(kind, f.n)
		}
	}
}

// clearReadFault clears the n-th failure of kind, unless a later one
// replaced it.
func (p *partition) clearReadFault(kind int, n uint64) {
	p.qmu.Lock()
	f := &p.readFaults[kind]
	ok := f.err != nil && f.n == n
	if ok {
		*f = readFault{n: n}
		p.readFailing.Store(p.readFaults[faultIO].err != nil || p.readFaults[faultCorrupt].err != nil)
	}
	p.qmu.Unlock()
	if ok {
		p.log.reportHealth()
	}
}

// probeReads, called every SpaceProbeInterval, reads again where each
// partition's last reads failed.
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
		for kind := range faultKinds {
			p.probeRead(kind)
		}
	}
}

// probeRead reads again at the position of the failure of kind, as a
// reader does: the whole batch there (a bad sector past a reader's first
// chunk fails every read of a large batch), decoded for damage. It clears
// the failure when that succeeds (for an I/O error: when the read gets no
// I/O error) or its segment is gone; offsets a read found missing
// (offsetGap) stay until a read gets through or the segment is gone.
func (p *partition) probeRead(kind int) {
	p.qmu.Lock()
	f := p.readFaults[kind]
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
		p.clearReadFault(kind, f.n)
		return
	}
	if f.gap {
		// Offsets missing: the batch there (or the segment's end) shows
		// nothing of it; a reader's read that gets through clears it.
		return
	}
	defer p.release(f.seg)
	file, err := p.log.files.acquire(f.seg)
	if err != nil {
		return
	}
	defer p.log.files.release(f.seg)
	fr := frameReader{r: file, pos: f.pos, limit: size, chunk: readerChunk}
	frame, _, err := fr.next()
	if kind == faultIO {
		if errors.Is(err, intentlog.ErrStorage) {
			return
		}
		p.clearReadFault(kind, f.n) // damage there is the reader's to find
		return
	}
	if err == nil {
		_, _, err = decodeBatch(nil, frame)
	}
	if err != nil && err != io.EOF {
		return
	}
	p.clearReadFault(kind, f.n)
}
