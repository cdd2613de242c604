package resolver

import (
	"context"
	"fmt"
	"sync"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// Leader epochs (Kafka, KIP-320). A truncation of the intent log below a
// partition's committed offset while no loop of it runs (an unclean leader
// election while the resolver restarted, or while the partition moved to
// another process), after which new intents took the lost offsets, cannot
// be told from a log that lost nothing by the offset alone: the next loop
// started at the committed offset and silently passed the new intents
// below it (acknowledged writes without events). On a log with leader
// epochs (intentlog.EpochLog) a partition commits, with each offset, the
// epoch of the intent before it as its reader read it, and starts its
// next reader at both: the log validates them, and a log that diverged
// below the offset fails the first read with a *intentlog.Truncation,
// handled as one found while reading (the commit lowered to where the log
// diverges, the partition started again there). A log that has no record
// of the committed epoch at all (intentlog.ErrEpochUnknown: on Kafka
// UNDEFINED_EPOCH_OFFSET) cannot say whether or where it diverged: the
// partition reads again from the log's start (epochUnknown).

// EpochGroup is a Group that commits each offset with its leader epoch
// (TransactEpochs: Transact with intentlog.EpochOffset offsets). A Group
// without it commits offsets without epochs.
type EpochGroup interface {
	TransactEpochs(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]intentlog.EpochOffset) error
}

// epochSource tells the leader epoch of the intent before an offset a
// partition commits: where the log diverged (the one offset whose epoch
// is known from a truncation: found at the start, or by the loop's reader,
// whose final commit is lowered there), else its reader's (an
// intentlog.EpochReader), else -1. The reader, started above where the
// log diverged, knows no epoch there: the lowered commit carried none,
// and the next start at it was not validated.
type epochSource struct {
	rd    intentlog.EpochReader
	mu    sync.Mutex // known: set by the loop, read by commits
	known intentlog.EpochOffset
}

// diverged records that the log diverged at at (a truncation).
func (s *epochSource) diverged(at intentlog.EpochOffset) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known = at
}

// at returns offset with its epoch, -1 when not known.
func (s *epochSource) at(offset int64) intentlog.EpochOffset {
	e := int32(-1)
	if s != nil {
		s.mu.Lock()
		known := s.known
		s.mu.Unlock()
		switch {
		case known.Offset >= 0 && offset == known.Offset:
			e = known.Epoch
		case s.rd != nil:
			e = s.rd.EpochBefore(offset)
		}
	}
	return intentlog.EpochOffset{Offset: offset, Epoch: max(e, -1)}
}

// epochUnknown is the error of a partition whose reader, started at the
// committed offset from and its leader epoch, found that the log has no
// record of that epoch (err: intentlog.ErrEpochUnknown): whether the log
// diverged below from, and new intents took the lost offsets, is not
// known. A truncation from the log's start: the partition starts again
// there, its commit lowered durably first, as for a committed offset past
// the log's end (the versions published before make reading again
// harmless), logged with reconcile and raised as truncated.
func (r *Resolver) epochUnknown(ctx context.Context, topic string, p int32, from int64, err error) error {
	start, _, berr := r.log.Bounds(ctx, topic, p)
	if berr != nil {
		return fmt.Errorf("resolver: read %s/%d at %d: %w; bounds: %w", topic, p, from, err, berr)
	}
	return fmt.Errorf("%w: %s/%d, starting at %d: the committed offset cannot be validated, reading again from the log's start: %w",
		errTruncated, topic, p, from, &intentlog.Truncation{From: start, Read: from, Epoch: -1, Err: err})
}

// committed returns the group's committed offsets of topic, with their
// epochs when the log keeps them (else -1).
func (r *Resolver) committed(ctx context.Context, topic string) (map[int32]intentlog.EpochOffset, error) {
	return intentlog.CommittedAt(ctx, r.log, r.cfg.Group, topic)
}

// commitAt commits one partition's offset with its epoch when the log
// keeps epochs.
func (r *Resolver) commitAt(ctx context.Context, topic string, p int32, at intentlog.EpochOffset) error {
	return intentlog.CommitAt(ctx, r.log, r.cfg.Group, topic, map[int32]intentlog.EpochOffset{p: at})
}

// newReader starts a reader of the partition at at, validated by its
// epoch when the log has epochs; the reader is an EpochReader then.
func (r *Resolver) newReader(topic string, p int32, at intentlog.EpochOffset) (intentlog.Reader, error) {
	return intentlog.ReaderAt(r.log, topic, p, at)
}

// transact runs one transaction of the group, with the offsets' epochs
// when it keeps them.
func transact(ctx context.Context, g Group, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if eg, ok := g.(EpochGroup); ok {
		return eg.TransactEpochs(ctx, shard, recs, offsets)
	}
	plain := make(map[string]map[int32]int64, len(offsets))
	for topic, ps := range offsets {
		plain[topic] = intentlog.PlainOffsets(ps)
	}
	return g.Transact(ctx, shard, recs, plain)
}
