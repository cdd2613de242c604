package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Paging of List.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
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
}

// NewQueue returns the queue of a table on a log.
func NewQueue(log intentlog.Log, table string) *Queue { return &Queue{log: log, table: table} }

// Table is the queue's table.
func (q *Queue) Table() string { return q.table }

// snapshot is what is settled in the topic up to end.
type snapshot struct {
	q          *Queue
	start, end int64
	f          *folder
}

// snapshot folds the whole topic as it is now.
func (q *Queue) snapshot(ctx context.Context) (*snapshot, error) {
	start, end, err := q.log.Bounds(ctx, Topic(q.table), 0)
	if errors.Is(err, intentlog.ErrUnknownTopic) {
		start, end, err = 0, 0, nil // never provisioned: empty
	}
	if err != nil {
		return nil, fmt.Errorf("dlq %s: %w", q.table, err)
	}
	s := &snapshot{q: q, start: start, end: end, f: newFolder(start, end)}
	err = q.read(ctx, start, end, func(r *intentlog.Record) (bool, error) {
		s.f.add(r)
		return true, nil
	})
	return s, err
}

// read calls fn for each record of [from, end) in order, until fn says
// stop.
func (q *Queue) read(ctx context.Context, from, end int64, fn func(*intentlog.Record) (bool, error)) error {
	if from >= end {
		return nil
	}
	rd, err := q.log.NewReader(Topic(q.table), 0, from)
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

// letters returns up to limit letters at offsets above after that
// keep accepts (given the offset and whether it is settled), and whether
// there are more; settled ones carry their resolution.
func (s *snapshot) letters(ctx context.Context, after int64, limit int, keep func(off int64, settled bool) bool) ([]*wailv1.DeadLetterEntry, bool, error) {
	var out []*wailv1.DeadLetterEntry
	more := false
	err := s.q.read(ctx, max(after+1, s.start), s.end, func(r *intentlog.Record) (bool, error) {
		if len(r.Key) == 0 || !keep(r.Offset, s.f.settled.has(r.Offset)) {
			return true, nil
		}
		m, err := Decode(r.Value)
		if err != nil || m.GetLetter() == nil {
			return true, nil // counted by the fold as invalid only if keyless; a bad letter is skipped
		}
		if len(out) == limit {
			more = true
			return false, nil
		}
		out = append(out, &wailv1.DeadLetterEntry{Offset: r.Offset, Letter: m.GetLetter()})
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, s.resolutions(ctx, out)
}

// resolutions fills in the first resolution of the settled entries.
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
	from := slices.MinFunc(entries, func(a, b *wailv1.DeadLetterEntry) int { return cmp.Compare(a.Offset, b.Offset) }).Offset + 1
	return s.q.read(ctx, from, s.end, func(r *intentlog.Record) (bool, error) {
		if len(r.Key) != 0 {
			return true, nil
		}
		m, err := Decode(r.Value)
		if err != nil || m.GetResolution() == nil {
			return true, nil
		}
		res := m.GetResolution()
		if e := want[res.Offset]; e != nil && res.Offset < r.Offset {
			e.Resolution = res
			delete(want, res.Offset)
		}
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
	return s.letters(ctx, max(o.After, -1), limit, func(_ int64, settled bool) bool { return o.IncludeSettled || !settled })
}

// Get returns the dead letter at offset, with its resolution if settled.
func (q *Queue) Get(ctx context.Context, offset int64) (*wailv1.DeadLetterEntry, error) {
	got, err := q.Entries(ctx, []int64{offset})
	if err != nil {
		return nil, err
	}
	return got[0], nil
}

// Entries returns the dead letters at offsets (in that order), settled or
// not; ErrNotFound names the offsets that hold none.
func (q *Queue) Entries(ctx context.Context, offsets []int64) ([]*wailv1.DeadLetterEntry, error) {
	s, err := q.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.entries(ctx, offsets)
}

func (s *snapshot) entries(ctx context.Context, offsets []int64) ([]*wailv1.DeadLetterEntry, error) {
	if len(offsets) == 0 {
		return nil, nil
	}
	want := map[int64]bool{}
	for _, off := range offsets {
		want[off] = true
	}
	found, _, err := s.letters(ctx, slices.Min(offsets)-1, len(want), func(off int64, _ bool) bool { return want[off] })
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
		return nil, fmt.Errorf("%w: table %s, offsets %v (`wail dlq ls %s --include-settled` lists them)", ErrNotFound, s.q.table, missing, s.q.table)
	}
	return out, nil
}

// Settle appends resolutions, durably, in one append.
func (q *Queue) Settle(ctx context.Context, res []*wailv1.DeadLetterResolution) error {
	if len(res) == 0 {
		return nil
	}
	recs := make([]*intentlog.Record, len(res))
	for i, r := range res {
		rec, err := ResolutionRecord(r)
		if err != nil {
			return err
		}
		recs[i] = rec
	}
	if err := q.log.Append(ctx, Topic(q.table), recs); err != nil {
		return fmt.Errorf("dlq %s: settle %d letters: %w", q.table, len(res), err)
	}
	return nil
}
