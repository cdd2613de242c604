package resolver

import (
	"context"
	"errors"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
)

// pubJob is one job of a loop's publisher: a commit, a batch of dead
// letters, or a batch of events; and what came of it.
type pubJob struct {
	commitOnly bool
	letters    []Letter
	records    []*wailv1.DeadLetter // of letters
	cutTo      int                  // the record limit records were cut to (loop.letterRecord then)
	events     []intent.Event
	apart      bool // events of keys that failed alone before (see publisher.events)
	// offset is committed with the records (transactional publishers);
	// base is the committed offset without them, for parts of a bisected
	// batch.
	offset, base int64

	committed int64 // the offset committed, or -1
	err       error // of a commit or of letters
	ok        []intent.Event
	fails     []PublishFailure
	fatal     error                  // the membership failed
	spans     map[string]*eventSpans // of traced events, by key (trace.go)
}

// runJob carries out a job; it runs on a goroutine of its own and touches
// nothing of the loop but what does not change (its identity, publisher).
func (l *loop) runJob(ctx context.Context, j *pubJob) *pubJob {
	switch {
	case j.commitOnly:
		if j.err = l.pub.commit(ctx, j.offset); j.err == nil {
			j.committed = j.offset
		}
	case len(j.letters) > 0:
		committed, err := l.pub.letters(ctx, j.records, j.offset)
		if j.err = err; err == nil && committed {
			j.committed = j.offset
		}
	default:
		res := l.pub.events(ctx, j.events, j.offset, j.apart)
		if res.err == nil && res.committed {
			j.committed = j.offset
		}
		j.settle(ctx, l.pub, j.events, res)
	}
	if errors.Is(j.err, errMembership) {
		j.fatal = j.err
	}
	return j
}

// settle records what came of appending evs and isolates what failed by
// bisecting it, so that the keys whose events the bus takes go on and a
// failure is reported alone (PublishFailure.Alone) only when an append of
// that event alone failed while the bus took everything else: an error of
// an append of several events, ErrTooLarge included (the batch over the
// log's limit), is never blamed on one of them. When both halves of a
// batch fail whole with an error that is not the records' own (the bus is
// down, or more than one record is bad), it stops there: a bus outage
// costs three appends, not one per event, and the keys retry in other
// batches after their backoff.
func (j *pubJob) settle(ctx context.Context, pub publisher, evs []intent.Event, res pubResult) {
	if errors.Is(res.err, errMembership) {
		j.fatal = res.err
		return
	}
	j.ok = append(j.ok, without(evs, res.failed)...)
	f := res.failed
	if res.err == nil || len(f) == 0 {
		return
	}
	if ctx.Err() != nil {
		res.uncertain = true // the loop is stopping: this says nothing about the records
	}
	if len(evs) == 1 || res.uncertain {
		j.fail(f, res, len(evs) == 1)
		return
	}
	if len(f) == 1 {
		// The others landed: only an append of its own can tell whether
		// the error is the event's.
		r := pub.events(ctx, f, j.base, false)
		if errors.Is(r.err, errMembership) {
			j.fatal = r.err
			return
		}
		j.settle(ctx, pub, f, r)
		return
	}
	h1, h2 := f[:len(f)/2], f[len(f)/2:]
	r1 := pub.events(ctx, h1, j.base, false)
	if errors.Is(r1.err, errMembership) {
		j.fatal = r1.err
		return
	}
	r2 := pub.events(ctx, h2, j.base, false)
	if errors.Is(r2.err, errMembership) {
		j.fatal = r2.err
		return
	}
	whole := func(r pubResult, h []intent.Event) bool {
		return r.err != nil && !permanent(r.err) && len(r.failed) == len(h)
	}
	if whole(r1, h1) && whole(r2, h2) {
		j.fail(h1, r1, false)
		j.fail(h2, r2, false)
		return
	}
	j.settle(ctx, pub, h1, r1)
	j.settle(ctx, pub, h2, r2)
}

func (j *pubJob) fail(evs []intent.Event, res pubResult, alone bool) {
	for _, e := range evs {
		j.fails = append(j.fails, PublishFailure{Event: e, Err: res.err, Permanent: permanent(res.err), Alone: alone, Uncertain: res.uncertain})
	}
}

// without returns the events of evs that are not in failed (by key: a
// batch holds one event per key).
func without(evs, failed []intent.Event) []intent.Event {
	if len(failed) == 0 {
		return evs
	}
	bad := make(map[string]bool, len(failed))
	for _, e := range failed {
		bad[string(e.Key)] = true
	}
	var out []intent.Event
	for _, e := range evs {
		if !bad[string(e.Key)] {
			out = append(out, e)
		}
	}
	return out
}
