package sink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// member is the id a sink joins its group with.
const member = "sink"

// ackTimeout bounds one commit of a sink's position.
const ackTimeout = 30 * time.Second

// rejoin bounds the wait before a sink whose session ended joins again.
var rejoin = policy{backoffMin: 500 * time.Millisecond, backoffMax: 30 * time.Second}

// runner delivers one sink's events until stopped.
type runner struct {
	m     *Manager
	def   *wailv1.Sink
	table group.Table
	pol   policy
	stats *stats

	cancel context.CancelFunc
	done   chan struct{}

	// rejoining: the last session failed (run's goroutine only): the
	// next one that joins clears the condition it raised.
	rejoining bool

	dlqMu sync.Mutex // partitions dead-letter at once
	dlq   bool       // the dead-letter topic was made

	// Partition locks and grants, for redrive (redrive.go).
	pmu    sync.Mutex
	plocks map[int32]chan struct{}
	sess   *group.Session
	epochs map[int32]uint64
}

// stats are a sink's counters since the process started (describe).
type stats struct {
	delivered, batches, retries, deadLettered atomic.Int64
	lastDelivered                             atomic.Int64 // unix ms
	retrying, inSnapshot                      atomic.Bool
	snapshotEvents                            atomic.Int64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

func (s *stats) fail(err error, at time.Time) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = err.Error(), at
	s.mu.Unlock()
}

func (r *runner) component() string { return "sink/" + r.def.Table + "/" + r.def.Name }

func (r *runner) labels() []string { return []string{r.def.Table, r.def.Name} }

// run joins the sink's group and delivers, joining again after a failure,
// until ctx ends.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	defer r.m.health.Clear(r.component())
	for n := 1; ; n++ {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		r.failed(err)
		// Cleared once a session joins again (or, like a failed
		// attempt, by the next 2xx): else it stayed raised while the
		// sink delivered, or had nothing to deliver.
		r.stats.retrying.Store(true)
		r.rejoining = true
		select {
		case <-time.After(rejoin.backoff(n, rand.Float64(), 0)):
		case <-ctx.Done():
			return
		}
	}
}

// failed records an error of the sink (not of one attempt).
func (r *runner) failed(err error) {
	now := time.Now()
	r.stats.fail(err, now)
	r.m.metrics.lastError.WithLabelValues(r.labels()...).Set(float64(now.UnixMilli()) / 1000)
	// /healthz is open to anyone: the URL's path and query (a token's
	// place) stay out of it; `wail sink describe` shows them.
	hide := urlHider(r.def.Url)
	r.m.health.Set(r.component(), health.Degraded, hide(fmt.Sprintf("sink %s of table %s: %v", r.def.Name, r.def.Table, err)),
		fmt.Sprintf("check the endpoint %s and `wail sink describe %s %s`; deliveries go on from the committed position when it answers",
			hide(r.def.Url), r.def.Table, r.def.Name))
}

func (r *runner) session(ctx context.Context) error {
	if r.def.Start == StartSnapshot {
		if err := r.snapshot(ctx); err != nil {
			return err
		}
	}
	sess, err := r.m.groups.Join(ctx, r.table, GroupName(r.def.Name), member, group.StartLatest(r.def.Start == "latest"))
	if err != nil {
		return fmt.Errorf("join group %s: %w", GroupName(r.def.Name), err)
	}
	defer sess.Leave()
	if r.rejoining {
		// What ended the last session (the log under it) works again;
		// a failure that comes back raises the condition again.
		r.rejoining = false
		if r.stats.retrying.Swap(false) {
			r.m.health.Clear(r.component())
		}
	}
	return r.deliverPartitions(ctx, sess)
}

// errMoved: the partition of the batch being delivered went to another
// process (sinks on several processes): it delivers from what was
// acknowledged; this one drops the rest of the batch.
var errMoved = errors.New("the partition moved to another process")

// handle delivers one partition batch of the group in requests of at
// most max_batch_events, acknowledging each once the endpoint took it
// (or it was dead-lettered).
func (r *runner) handle(ctx context.Context, msg group.Message, owns func() bool) error {
	recs := msg.Records
	if len(recs) == 0 {
		return r.ack(ctx, msg, msg.Next)
	}
	limit := batchLen(r.def)
	for len(recs) > 0 {
		chunk := recs[:min(len(recs), limit)]
		recs = recs[len(chunk):]
		next := chunk[len(chunk)-1].Offset + 1
		if len(recs) == 0 {
			next = msg.Next // the records passed after it (tombstones) too
		}
		if err := r.deliver(ctx, msg.Partition, chunk, next, owns); err != nil {
			return err
		}
		if err := r.ack(ctx, msg, next); err != nil {
			return err
		}
	}
	return nil
}

// batchLen is the most events one request of def carries. A definition
// is read from the store, not checked as a create checks it: a
// max_batch_events of 0 (an entry without it) takes the default, and one
// out of 1..MaxMaxBatch the nearest bound.
func batchLen(def *wailv1.Sink) int {
	if def.MaxBatchEvents == 0 {
		return DefaultMaxBatch
	}
	return int(min(max(def.MaxBatchEvents, 1), MaxMaxBatch))
}

func (r *runner) ack(ctx context.Context, msg group.Message, next int64) error {
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	refused, err := r.m.groups.Ack(actx, r.table, GroupName(r.def.Name), member, []group.Ack{{Partition: msg.Partition, Epoch: msg.Epoch, Next: next}})
	if err != nil {
		return fmt.Errorf("commit the position: %w", err)
	}
	if err := refused[msg.Partition]; errors.Is(err, group.ErrNotOwner) {
		return errMoved
	} else if err != nil {
		return fmt.Errorf("commit the position of partition %d: %w", msg.Partition, err)
	}
	r.m.updateLag(ctx, r)
	return nil
}

// deliver posts one request's events, retrying within the sink's bounds,
// then dead-letters them. It fails only when ctx ends, the dead letter
// cannot be written (the batch is then delivered again), or the partition
// moved (errMoved: owns said no before an attempt).
func (r *runner) deliver(ctx context.Context, p int32, recs []intentlog.Record, next int64, owns func() bool) error {
	b := &wailv1.SinkBatch{Sink: r.def.Name, Table: r.def.Table, Partition: p, FirstOffset: recs[0].Offset, NextOffset: next}
	for i := range recs {
		if ev, ok := decode(&recs[i]); ok {
			b.Events = append(b.Events, ev)
		}
	}
	if len(b.Events) == 0 {
		return nil
	}
	delivery := r.def.Table + "/" + strconv.Itoa(int(p)) + "/" + strconv.FormatInt(b.FirstOffset, 10) + "-" + strconv.FormatInt(next, 10)
	return r.post(ctx, b, delivery, recs, owns)
}

// decode reads a bus record as the event a sink sends: wail's envelope,
// or a typed table's record (the row's value and key in the Confluent
// wire format, metadata in headers), unframed to the row's key and value
// like subscribers get them (eventbus.Decode). ok false: not an event
// (an envelope delete's tombstone, or bytes that are none), never sent.
// Letters and redrive key events by the row key it returns, never by the
// bus record's key (a typed key is framed there).
func decode(rec *intentlog.Record) (ev *wailv1.ChangeEvent, ok bool) {
	e, ok, err := eventbus.Decode(rec)
	if !ok || err != nil {
		return nil, false
	}
	return e.Proto(), true
}

// post sends a batch until the endpoint takes it, or dead-letters recs
// once the bounds are passed (or the endpoint refused it).
func (r *runner) post(ctx context.Context, b *wailv1.SinkBatch, delivery string, recs []intentlog.Record, owns func() bool) error {
	body, ctype, err := encode(r.def.Format, b)
	if err != nil {
		return fmt.Errorf("encode a batch: %w", err)
	}
	first := time.Now()
	for n := 1; ; n++ {
		if !owns() {
			return errMoved
		}
		a := post(ctx, r.m.client, r.def, delivery, n, body, ctype, time.Now())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch judge(a.status) {
		case accepted:
			r.delivered(len(b.Events))
			return nil
		case refused:
			if a.status == http.StatusRequestEntityTooLarge && len(recs) > 1 {
				// Too large for the endpoint, not wrong: the two halves
				// go one after the other (per-key order kept), each
				// halved again if need be; an event too large alone is
				// dead-lettered.
				h := len(recs) / 2
				if b.Snapshot {
					// Still snapshot requests, named after this one: a
					// snapshot's records have no bus range to name them.
					if err := r.postSnapshot(ctx, b.Events[:h], recs[:h], delivery+".1", owns); err != nil {
						return err
					}
					return r.postSnapshot(ctx, b.Events[h:], recs[h:], delivery+".2", owns)
				}
				if err := r.deliver(ctx, b.Partition, recs[:h], recs[h].Offset, owns); err != nil {
					return err
				}
				return r.deliver(ctx, b.Partition, recs[h:], b.NextOffset, owns)
			}
			return r.deadLetter(ctx, recs, failure{err: a.err, status: a.status, attempts: n, first: first, last: time.Now(), permanent: true})
		}
		r.stats.retries.Add(1)
		r.stats.retrying.Store(true)
		r.m.metrics.retries.WithLabelValues(r.labels()...).Inc()
		r.failed(fmt.Errorf("attempt %d of %s: %w", n, delivery, a.err))
		r.m.updateLag(ctx, r)
		wait := r.pol.backoff(n, rand.Float64(), a.retryAfter)
		if r.pol.giveUp(n, time.Since(first), wait) {
			return r.deadLetter(ctx, recs, failure{err: fmt.Errorf("gave up after %d attempts in %s: %w", n, time.Since(first).Round(time.Millisecond), a.err),
				status: a.status, attempts: n, first: first, last: time.Now()})
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *runner) delivered(events int) {
	r.stats.delivered.Add(int64(events))
	r.stats.batches.Add(1)
	r.stats.lastDelivered.Store(time.Now().UnixMilli())
	if r.stats.retrying.Swap(false) {
		r.m.health.Clear(r.component())
	}
	r.m.metrics.delivered.WithLabelValues(r.labels()...).Add(float64(events))
}

// deadLetter appends the records' letters (deadletter.go) to the sink's
// dead-letter topic with why and after how many attempts.
func (r *runner) deadLetter(ctx context.Context, recs []intentlog.Record, f failure) error {
	topic := DeadLetterTopic(r.def.Table, r.def.Name)
	if err := r.appendLetters(ctx, r.letters(recs, f, time.Now())); err != nil {
		return err
	}
	r.stats.deadLettered.Add(int64(len(recs)))
	r.m.metrics.deadLettered.WithLabelValues(r.labels()...).Add(float64(len(recs)))
	r.failed(fmt.Errorf("dead-lettered %d events to %s (`wail sink dlq ls %s %s`): %w", len(recs), topic, r.def.Table, r.def.Name, f.err))
	r.stats.retrying.Store(true) // cleared (with health) by the next delivery
	return nil
}
