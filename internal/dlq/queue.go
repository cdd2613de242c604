package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Paging of List.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxBytes bounds the encoded size of the letters of one List page
	// (at least one letter is returned, up to the log's record limit).
	MaxBytes = 4 << 20
)

// ErrNotFound: no dead letter at an offset.
var ErrNotFound = errors.New("no dead letter at that offset")

// Queue reads and settles the dead letters of one table. Reading costs a
// pass over the topic to learn what is settled (one bit per record, see
// fold.go), then a pass from the first letter asked for; memory holds the
// letters returned, never the topic. A table whose topic does not exist
// has no dead letters.
type Queue struct {
	log   intentlog.Log
	table string
	topic string
	// cli is the command line of the queue's letters in error messages:
	// "wail dlq" and the table, or "wail sink dlq" and the table and sink.
	cli, args string
	// name names the queue in error messages.
	name string
	// legacy reads a keyed record that is not a DeadLetterRecord as a
	// letter of an older format, or returns nil (NewSinkQueue).
	legacy func(*intentlog.Record) *wailv1.DeadLetter
	// created is the table's creation time (Unix µs; 0: any): the
	// resolutions the queue appends carry it, and its folds void those of
	// another incarnation of the table.
	created int64
}

// NewQueue returns the queue of a table on a log; created is the table's
// creation time (Unix µs; 0: any incarnation).
func NewQueue(log intentlog.Log, table string, created int64) *Queue {
	return &Queue{log: log, table: table, topic: Topic(table), cli: "wail dlq", args: table, name: "table " + table, created: created}
}

// NewSinkQueue returns the queue of a webhook sink's dead letters: the
// same format in the sink's own topic (package sink names it). legacy,
// when not nil, reads the records of an older format found there as
// letters (nil: not one); what it returns must pass the format's checks.
func NewSinkQueue(log intentlog.Log, table, sink, topic string, legacy func(*intentlog.Record) *wailv1.DeadLetter) *Queue {
	return &Queue{log: log, table: table, topic: topic, cli: "wail sink dlq", args: table + " " + sink,
		name: "sink " + sink + " of table " + table, legacy: legacy}
}

// command is the command line of sub on the queue's letters, offsets
// after it.
func (q *Queue) command(sub string, offsets ...int64) string {
	c := q.cli + " " + sub + " " + q.args
	for _, off := range offsets {
		c += " " + strconv.FormatInt(off, 10)
	}
	return c
}

// Topic is the queue's topic.
func (q *Queue) Topic() string { return q.topic }

// Table is the queue's table.
func (q *Queue) Table() string { return q.table }

// snapshot is the letters of the topic up to end, and what is settled
// in it: as of end, or later once caught up (pos).
type snapshot struct {
	q          *Queue
	start, end int64
	f          *folder
	// pos is how far f has folded the topic: end, or later (catchUp).
	pos int64
}

// snapshot folds the whole topic as it is now.
func (q *Queue) snapshot(ctx context.Context) (*snapshot, error) {
	start, end, err := q.log.Bounds(ctx, q.topic, 0)
	if errors.Is(err, intentlog.ErrUnknownTopic) {
		start, end, err = 0, 0, nil // never provisioned: empty
	}
	if err != nil {
		return nil, fmt.Errorf("dlq %s: %w", q.table, err)
	}
	s := &snapshot{q: q, start: start, end: end, f: newFolder(start, end, q.created), pos: end}
	err = q.read(ctx, start, end, func(r *intentlog.Record) (bool, error) {
		s.f.add(r)
		return true, nil
	})
	return s, err
}

// catchUp folds the records appended to the topic since the snapshot's
// last fold (its letters stay those up to end), calling settles with each
// resolution that settles one of them. Memory: none per record.
func (s *snapshot) catchUp(ctx context.Context, settles func(*wailv1.DeadLetterResolution)) error {
	_, end, err := s.q.log.Bounds(ctx, s.q.topic, 0)
	if err != nil {
		return fmt.Errorf("dlq %s: %w", s.q.table, err)
	}
	s.f.settles = settles
	defer func() { s.f.settles = nil }()
	if err := s.q.read(ctx, s.pos, end, func(r *intentlog.Record) (bool, error) {
		s.f.add(r)
		return true, nil
	}); err != nil {
		return err
	}
	s.pos = max(s.pos, end)
	return nil
}

// read calls fn for each record of [from, end) in order, until fn says
// stop.
func (q *Queue) read(ctx context.Context, from, end int64, fn func(*intentlog.Record) (bool, error)) error {
	if from >= end {
		return nil
	}
	rd, err := q.log.NewReader(q.topic, 0, from)
	if err != nil {
		return fmt.Errorf("dlq %s: read at %d: %w", q.table, from, err)
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			return fmt.Errorf("dlq %s: read at %d: %w", q.table, rd.Position(), err)
		}
		for i := range recs {
			if recs[i].Offset >= end {
				return nil
			}
			if more, err := fn(&recs[i]); !more || err != nil {
				return err
			}
		}
	}
	return nil
}

// pick says which letters a pass returns.
type pick struct {
	after int64 // only letters at higher offsets
	limit int   // at most this many
	// maxBytes bounds the encoded size of the letters returned (0: no
	// bound); the first one is always returned.
	maxBytes int
	// slim keeps only what settling a letter needs: kind, partition, key
	// and gap range (not the intents or the error).
	slim bool
	keep func(off int64, settled bool) bool
}

// letters returns the letters p picks and whether more follow; settled
// ones carry their resolution.
func (s *snapshot) letters(ctx context.Context, p pick) ([]*wailv1.DeadLetterEntry, bool, error) {
	var out []*wailv1.DeadLetterEntry
	more, size := false, 0
	from := s.start
	if p.after >= s.start {
		from = min(p.after, s.end-1) + 1 // after = MaxInt64 must not wrap
	}
	err := s.q.read(ctx, from, s.end, func(r *intentlog.Record) (bool, error) {
		if len(r.Key) == 0 || !p.keep(r.Offset, s.f.settled.has(r.Offset)) {
			return true, nil
		}
		l := s.q.letter(r)
		if l == nil {
			return true, nil // not a letter: nothing to list or settle
		}
		size += len(r.Value)
		if len(out) == p.limit || (p.maxBytes > 0 && size > p.maxBytes && len(out) > 0) {
			more = true
			return false, nil
		}
		if p.slim {
			l = &wailv1.DeadLetter{Table: l.Table, Partition: l.Partition, Key: l.Key, Kind: l.Kind,
				GapStartOffset: l.GapStartOffset, GapEndOffset: l.GapEndOffset}
		}
		out = append(out, &wailv1.DeadLetterEntry{Offset: r.Offset, Letter: l})
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	for _, e := range out {
		e.Claim = s.f.claims[e.Offset] // unsettled ones: settled letters have none
	}
	return out, more, s.resolutions(ctx, out)
}

// letter returns the letter a keyed record holds, or nil.
func (q *Queue) letter(r *intentlog.Record) *wailv1.DeadLetter {
	if m, err := Decode(r.Value); err == nil {
		return m.GetLetter()
	}
	if q.legacy == nil {
		return nil
	}
	if l := q.legacy(r); l != nil && checkLetter(l) == nil {
		return l
	}
	return nil
}

// resolutions fills in the resolution that settled each settled entry
// (folding again from the lowest entry: a void resolution is not one).
func (s *snapshot) resolutions(ctx context.Context, entries []*wailv1.DeadLetterEntry) error {
	want := map[int64]*wailv1.DeadLetterEntry{}
	for _, e := range entries {
		if s.f.settled.has(e.Offset) {
			want[e.Offset] = e
		}
	}
	if len(want) == 0 {
		return nil
	}
	from := slices.MinFunc(entries, func(a, b *wailv1.DeadLetterEntry) int { return cmp.Compare(a.Offset, b.Offset) }).Offset
	f := newFolder(from, s.end, s.q.created)
	f.settles = func(res *wailv1.DeadLetterResolution) {
		if e := want[res.Offset]; e != nil {
			e.Resolution = res
			delete(want, res.Offset)
		}
	}
	return s.q.read(ctx, from+1, s.end, func(r *intentlog.Record) (bool, error) {
		f.add(r)
		return len(want) > 0, nil
	})
}

// ListOptions select what List returns.
type ListOptions struct {
	// IncludeSettled lists redriven and dropped letters too.
	IncludeSettled bool
	// After pages: only letters at higher offsets (-1: from the start).
	After int64
	// Limit caps the entries: 0 is DefaultLimit; above MaxLimit is MaxLimit.
	Limit int
}

// List returns dead letters in offset order and whether more follow.
func (q *Queue) List(ctx context.Context, o ListOptions) ([]*wailv1.DeadLetterEntry, bool, error) {
	limit := o.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	s, err := q.snapshot(ctx)
	if err != nil {
		return nil, false, err
	}
	return s.letters(ctx, pick{after: max(o.After, -1), limit: limit, maxBytes: MaxBytes,
		keep: func(_ int64, settled bool) bool { return o.IncludeSettled || !settled }})
}

// Get returns the dead letter at offset, with its resolution if settled.
func (q *Queue) Get(ctx context.Context, offset int64) (*wailv1.DeadLetterEntry, error) {
	s, err := q.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	got, err := s.entries(ctx, []int64{offset}, false)
	if err != nil {
		return nil, err
	}
	return got[0], nil
}

// entries returns the dead letters at offsets (in that order), settled or
// not, slim ones (see pick) when slim; ErrNotFound names the offsets that
// hold none.
func (s *snapshot) entries(ctx context.Context, offsets []int64, slim bool) ([]*wailv1.DeadLetterEntry, error) {
	if len(offsets) == 0 {
		return nil, nil
	}
	want := map[int64]bool{}
	for _, off := range offsets {
		want[off] = true
	}
	found, _, err := s.letters(ctx, pick{after: slices.Min(offsets) - 1, limit: len(want), slim: slim,
		keep: func(off int64, _ bool) bool { return want[off] }})
	if err != nil {
		return nil, err
	}
	byOffset := map[int64]*wailv1.DeadLetterEntry{}
	for _, e := range found {
		byOffset[e.Offset] = e
	}
	out := make([]*wailv1.DeadLetterEntry, len(offsets))
	var missing []int64
	for i, off := range offsets {
		if out[i] = byOffset[off]; out[i] == nil {
			missing = append(missing, off)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s, offsets %v (`%s --include-settled` lists them)", ErrNotFound, s.q.topic, missing, s.q.command("ls"))
	}
	return out, nil
}

// Settle appends resolutions, durably, in one append; those without a
// table incarnation get the queue's.
func (q *Queue) Settle(ctx context.Context, res []*wailv1.DeadLetterResolution) error {
	for _, r := range res {
		if r.TableCreatedAtUs == 0 {
			r.TableCreatedAtUs = q.created
		}
	}
	return appendAll(ctx, q, "settle", res, ResolutionRecord)
}

// appendAll appends the records of items (what names the act in its
// error), durably, in one append.
func appendAll[T any](ctx context.Context, q *Queue, what string, items []T, record func(T) (*intentlog.Record, error)) error {
	if len(items) == 0 {
		return nil
	}
	recs := make([]*intentlog.Record, len(items))
	for i, x := range items {
		rec, err := record(x)
		if err != nil {
			return err
		}
		recs[i] = rec
	}
	if err := q.log.Append(ctx, q.topic, recs); err != nil {
		return fmt.Errorf("dlq %s: %s %d letters: %w", q.table, what, len(items), err)
	}
	return nil
}
