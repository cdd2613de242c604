package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// publisher is where a loop's output goes: events to the bus, dead letters
// to the table's dead-letter topic, the committed offset to the log. One
// loop uses one publisher, from one goroutine at a time.
//
//   - plainPublisher appends to the bus and the dead-letter topic and
//     commits with the log's Commit (the embedded log, or any log without
//     a group). A failed append may have landed in part: it reads what the
//     append wrote (the loop is the only writer of its bus partition, so
//     that is everything from the partition's end before the append) before
//     it reports what failed, and before it appends again an event whose
//     fate it could not check.
//   - txnPublisher hands everything to the member's transaction pump
//     (Kafka): the records and the offset commit in one transaction, all
//     or nothing.
type publisher interface {
	// events appends events to the bus, in order, and commits offset with
	// them when it can (res.committed). apart asks to keep them apart from
	// other partitions' records (they failed alone before: a transactional
	// publisher gives them a transaction of their own, so that their abort
	// does not abort the others').
	events(ctx context.Context, evs []intent.Event, offset int64, apart bool) pubResult
	// letters appends dead letters, and commits offset with them when it
	// can (committed).
	letters(ctx context.Context, ls []*wailv1.DeadLetter, offset int64) (committed bool, err error)
	// commit moves the committed offset.
	commit(ctx context.Context, offset int64) error
}

// pubResult is what came of appending events.
type pubResult struct {
	// failed are the events not on the bus (all of them when err is set,
	// unless some landed before the append failed).
	failed []intent.Event
	err    error
	// uncertain: the failed events may be on the bus after all (the check
	// failed too); they are checked before they are appended again.
	uncertain bool
	// committed: the offset was committed with the events.
	committed bool
}

// permanent reports whether an append error is the record's own fault and
// can never go away: too large for the bus, or not encodable.
func permanent(err error) bool {
	return errors.Is(err, intentlog.ErrTooLarge) || errors.Is(err, eventbus.ErrEncode)
}

type plainPublisher struct {
	r     *Resolver
	table string
	topic string // intent topic
	part  int32
	// epochs gives the leader epochs of the offsets it commits (nil:
	// none known).
	epochs *epochSource

	// mu guards what follows of the events' appends: a loop runs two of
	// them at a time (overlap), with events of different keys. It is not
	// held during an append.
	mu sync.Mutex
	// Events whose append failed and whose landing could not be checked:
	// key -> version; the bus partition's end before the first of them
	// (before the earliest of them: appends run at the same time).
	uncertain     map[string]uint64
	uncertainFrom int64
	// landed are the last versions on the bus of keys that were
	// uncertain, from the check that settled them; an event at or below
	// is on the bus already.
	landed map[string]uint64
	// uncertainLetters are the letters (letterAt) of appends that failed
	// and that no call wrote since; lettersFrom is the dead-letter
	// topic's end before the earliest of those appends (-1: none). A call
	// with any of them reads the partition's letters from there first,
	// and writes only those that did not land. Kept until each is
	// written: the core retries each key on its own backoff, so another
	// key's letter may go out first (it used up the check, and the
	// letter was written twice). An offset, not a time: the topic's
	// record timestamps come from the log's clock, which may step back
	// between an append's start and its records (a check from 10 s before
	// the start missed letters that landed).
	uncertainLetters map[letterAt]bool
	lettersFrom      int64
}

// letterAt identifies a dead letter to the plain publisher: by the offset
// of each intent it holds (the core writes a key's letter again as it
// was, but its records may be cut otherwise), or a gap letter by its
// start.
type letterAt struct {
	gap    bool
	offset int64
}

// eachLetterAt calls f with what identifies the letters of ls.
func eachLetterAt(ls []*wailv1.DeadLetter, f func(letterAt)) {
	for _, d := range ls {
		if d.Kind == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
			f(letterAt{gap: true, offset: d.GapStartOffset})
			continue
		}
		for _, o := range d.IntentOffsets {
			f(letterAt{offset: o})
		}
	}
}

func newPlainPublisher(r *Resolver, table string, part int32) *plainPublisher {
	return &plainPublisher{r: r, table: table, topic: intent.Topic(table), part: part,
		uncertain: map[string]uint64{}, landed: map[string]uint64{}, uncertainLetters: map[letterAt]bool{}, lettersFrom: -1}
}

func (p *plainPublisher) events(ctx context.Context, evs []intent.Event, _ int64, _ bool) pubResult {
	rest, err := p.unsettled(ctx, evs)
	if err != nil {
		return pubResult{failed: evs, err: err, uncertain: true}
	}
	if len(rest) == 0 {
		return pubResult{}
	}
	end, err := p.r.bus.End(ctx, p.table, p.part)
	if err != nil {
		return pubResult{failed: rest, err: err} // nothing appended
	}
	err = p.r.bus.Publish(ctx, p.table, rest)
	if err == nil {
		return pubResult{}
	}
	// A failed append may have landed in part: find out now, so that
	// what is reported failed is known not to be on the bus.
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.uncertain) == 0 || end < p.uncertainFrom {
		p.uncertainFrom = end
	}
	for _, e := range rest {
		p.uncertain[string(e.Key)] = e.Version
	}
	if cerr := p.check(ctx); cerr != nil {
		return pubResult{failed: rest, err: err, uncertain: true}
	}
	var failed []intent.Event
	for _, e := range rest {
		if v, ok := p.landed[string(e.Key)]; ok && e.Version <= v {
			delete(p.landed, string(e.Key))
			continue
		}
		delete(p.landed, string(e.Key))
		failed = append(failed, e)
	}
	return pubResult{failed: failed, err: err}
}

// unsettled returns the events of evs that are not on the bus yet, as
// far as failed appends before tell: it settles those of keys whose
// append's fate is unknown first (check), and drops those that landed.
func (p *plainPublisher) unsettled(ctx context.Context, evs []intent.Event) ([]intent.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.uncertain) == 0 && len(p.landed) == 0 {
		return evs, nil
	}
	for i := range evs {
		if _, ok := p.uncertain[string(evs[i].Key)]; ok {
			if err := p.check(ctx); err != nil {
				return nil, err
			}
			break
		}
	}
	var rest []intent.Event
	for _, e := range evs {
		k := string(e.Key)
		if v, ok := p.landed[k]; ok {
			delete(p.landed, k)
			if e.Version <= v {
				continue // it reached the bus when its append failed
			}
		}
		rest = append(rest, e)
	}
	return rest, nil
}

// check reads what reached the bus since the first uncertain append and
// settles every uncertain event: landed (remembered in p.landed) or not.
// The caller holds mu.
func (p *plainPublisher) check(ctx context.Context) error {
	ret, err := p.r.bus.LastVersionsOf(ctx, p.table, p.part, p.uncertainFrom, func(key []byte) bool {
		_, ok := p.uncertain[string(key)]
		return ok
	})
	if err != nil {
		return fmt.Errorf("resolver: check what reached the bus: %w", err)
	}
	for k, v := range p.uncertain {
		if last := ret.Last[k]; last >= v {
			p.landed[k] = last
		}
	}
	clear(p.uncertain)
	return nil
}

func (p *plainPublisher) letters(ctx context.Context, ls []*wailv1.DeadLetter, _ int64) (bool, error) {
	topic := dlq.Topic(p.table)
	all := ls
	check := false
	eachLetterAt(ls, func(at letterAt) { check = check || p.uncertainLetters[at] })
	if check {
		// An append of letters failed: skip those that landed anyway.
		found, err := scanLettersAt(ctx, p.r.log, p.table, p.part, p.lettersFrom, false)
		if err != nil {
			return false, err
		}
		if ls = found.missing(ls); len(ls) == 0 {
			p.lettersWritten(all)
			return false, nil
		}
	}
	// Read before the first append: whatever of this call lands, even an
	// append that fails late (a stalled disk, a lost answer) or a later
	// append of this call that fails, is at or after it. The topic has
	// one partition, written by this process alone (the embedded log).
	_, end, err := p.r.log.Bounds(ctx, topic, 0)
	if err != nil {
		return false, fmt.Errorf("resolver: write dead letters of %s: the end of %s: %w", p.table, topic, err)
	}
	// One letter may hold more intents than one append takes: the
	// records go in appends within the log's limit (a failure midway
	// leaves the next call to skip what landed).
	limit := p.r.appendLimit(ctx, topic)
	for len(ls) > 0 {
		n, size := 1, letterBytes(ls[0])
		for n < len(ls) && size+letterBytes(ls[n]) <= limit {
			size += letterBytes(ls[n])
			n++
		}
		recs, err := letterRecords(ls[:n])
		if err == nil {
			err = p.r.log.Append(ctx, topic, recs)
		}
		if err != nil {
			// Those that landed before (skipped above) are written
			// again too: they are checked again.
			eachLetterAt(all, func(at letterAt) { p.uncertainLetters[at] = true })
			if p.lettersFrom < 0 || end < p.lettersFrom {
				p.lettersFrom = end
			}
			return false, fmt.Errorf("resolver: write dead letters of %s: %w", p.table, err)
		}
		ls = ls[n:]
	}
	p.lettersWritten(all)
	return false, nil
}

// lettersWritten forgets the letters of ls as uncertain: they are in the
// dead-letter topic.
func (p *plainPublisher) lettersWritten(ls []*wailv1.DeadLetter) {
	eachLetterAt(ls, func(at letterAt) { delete(p.uncertainLetters, at) })
	if len(p.uncertainLetters) == 0 {
		p.lettersFrom = -1
	}
}

func (p *plainPublisher) commit(ctx context.Context, offset int64) error {
	return p.r.commitAt(ctx, p.topic, p.part, p.epochs.at(offset))
}

// txnPublisher publishes through the member's transaction pump: records
// and the offset in one transaction. An aborted one left nothing visible
// (ErrAborted: it can be tried again); any other failure ends the
// membership (errMembership).
type txnPublisher struct {
	r     *Resolver
	pump  *pump
	table string
	topic string // intent topic
	part  int32
	done  <-chan struct{} // the loop is gone: drop what it asked for
	// epochs gives the leader epochs of the offsets it commits (nil:
	// none known).
	epochs *epochSource
}

func (p *txnPublisher) events(ctx context.Context, evs []intent.Event, offset int64, apart bool) pubResult {
	topic, recs, err := p.r.bus.Records(ctx, p.table, evs)
	if err != nil {
		return pubResult{failed: evs, err: err}
	}
	if err := p.transact(ctx, &txnRequest{recs: map[string][]*intentlog.Record{topic: recs}, offset: offset, apart: apart}); err != nil {
		return pubResult{failed: evs, err: err}
	}
	return pubResult{committed: true}
}

func (p *txnPublisher) letters(ctx context.Context, ls []*wailv1.DeadLetter, offset int64) (bool, error) {
	recs, err := letterRecords(ls)
	if err != nil {
		return false, err
	}
	if err := p.transact(ctx, &txnRequest{recs: map[string][]*intentlog.Record{dlq.Topic(p.table): recs}, offset: offset}); err != nil {
		return false, err
	}
	return true, nil
}

func (p *txnPublisher) commit(ctx context.Context, offset int64) error {
	return p.transact(ctx, &txnRequest{offset: offset})
}

func (p *txnPublisher) transact(ctx context.Context, rq *txnRequest) error {
	rq.topic, rq.part, rq.done, rq.epoch = p.topic, p.part, p.done, p.epochs.at(rq.offset).Epoch
	err := p.pump.do(ctx, rq)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil, errors.Is(err, ErrAborted), errors.Is(err, intentlog.ErrTooLarge):
		return err
	}
	return fmt.Errorf("%w: %s/%d: %w", errMembership, p.topic, p.part, err)
}
