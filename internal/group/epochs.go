package group

import (
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Leader epochs (Kafka, KIP-320). A truncation of an event partition below
// the group's committed offset while no member reads it (an unclean leader
// election while the group had no members, while the server restarted, or
// while the partition moved), after which new events took the lost
// offsets, cannot be told from a log that lost nothing by the offset
// alone: the next member started at the committed offset and silently
// passed the new events below it. On a log with leader epochs
// (intentlog.EpochLog, intentlog.FencedEpochCommitter) each commit of an
// acknowledgement carries the epoch of the event before the offset, as the
// member's reader read it, and a member that starts the partition starts
// its reader at the committed offset and that epoch: the log validates
// them (OffsetForLeaderEpoch), and a log that diverged below the offset
// fails the first read with an *intentlog.Truncation, which ends the
// member with ErrPositionLost (Session.truncated). Offsets committed by
// no member's reader (a reset, a new group's start, a snapshot's end:
// commitAll, grant) carry the epoch of the event before them as the log
// has it when they are committed (intentlog.EpochFinder), validated the
// same way. Offsets committed without an epoch (by an older wail; one at
// the log's start, with no event before it) start unvalidated, as
// before. The embedded log has no epochs: nothing of this applies to it.

// partReader is the reader a session last started for a partition, with
// the group epoch of the grant it reads for, and the readers before it
// of the same grant that it replaced when they dropped a read
// (Stream.Take; the most recent last, at most maxPrevReaders): the
// messages they sent may still be unacknowledged, and only they know the
// epochs below the new reader's start.
type partReader struct {
	epoch uint64
	rd    intentlog.Reader
	prev  []intentlog.Reader
}

// maxPrevReaders bounds a partReader's prev: acknowledgements of
// messages sent by readers older still commit without an epoch.
const maxPrevReaders = 4

// knownAt records that p's committed offset is at (with its leader
// epoch); under gr.mu. Only a commit that moved the core's committed
// offset to at.Offset is known: a reader starts validated only at the
// very offset whose epoch was committed (startAt).
func (gr *grp) knownAt(p int32, at intentlog.EpochOffset) {
	if gr.core.Committed(p) != at.Offset {
		return
	}
	if gr.leaders == nil {
		gr.leaders = map[int32]intentlog.EpochOffset{}
	}
	gr.leaders[p] = at
}

// startAt is where a reader of p granted at offset starts: with the
// leader epoch committed with offset when known here, else -1 (not
// validated); under gr.mu.
func (gr *grp) startAt(p int32, offset int64) intentlog.EpochOffset {
	at := intentlog.EpochOffset{Offset: max(offset, 0), Epoch: -1}
	if k, ok := gr.leaders[p]; ok && offset >= 0 && k.Offset == offset {
		at.Epoch = k.Epoch
	}
	return at
}

// setReader records the reader of p for the grant at epoch.
// With again, rd reads again what the reader before it dropped: that
// one is kept in prev.
func (s *Session) setReader(p int32, epoch uint64, rd intentlog.Reader, again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rds == nil {
		s.rds = map[int32]partReader{}
	}
	pr := partReader{epoch: epoch, rd: rd}
	if old, ok := s.rds[p]; ok && again && old.epoch == epoch {
		pr.prev = append(old.prev, old.rd)
		if len(pr.prev) > maxPrevReaders {
			pr.prev = pr.prev[len(pr.prev)-maxPrevReaders:]
		}
	}
	s.rds[p] = pr
}

// leaderEpoch is the leader epoch of the event before next in p, as the
// member's reader of the grant at epoch read it (-1: unknown). A reader
// stopped (the partition draining) still knows it.
func (s *Session) leaderEpoch(p int32, epoch uint64, next int64) int32 {
	s.mu.Lock()
	pr, ok := s.rds[p]
	s.mu.Unlock()
	if !ok || pr.epoch != epoch {
		return -1
	}
	e := intentlog.EpochBefore(pr.rd, next)
	for i := len(pr.prev) - 1; e < 0 && i >= 0; i-- {
		e = intentlog.EpochBefore(pr.prev[i], next) // next below rd's start
	}
	return e
}

// withEpochs gives each offset its leader epoch from leaders (absent:
// -1, not validated).
func withEpochs(offsets map[int32]int64, leaders map[int32]int32) map[int32]intentlog.EpochOffset {
	out := make(map[int32]intentlog.EpochOffset, len(offsets))
	for p, o := range offsets {
		out[p] = intentlog.EpochOffset{Offset: o, Epoch: -1}
		if e, ok := leaders[p]; ok {
			out[p] = intentlog.EpochOffset{Offset: o, Epoch: max(e, -1)}
		}
	}
	return out
}

// leadersOf returns the leader epoch of each offset of at.
func leadersOf(at map[int32]intentlog.EpochOffset) map[int32]int32 {
	out := make(map[int32]int32, len(at))
	for p, o := range at {
		out[p] = o.Epoch
	}
	return out
}
