package resolver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// readTimeout bounds one store read; a timed-out read counts as an error
// (retried, never a reason to give up on an intent).
const readTimeout = 5 * time.Second

// maxPublishBatch bounds the events of one bus append.
const maxPublishBatch = 4096

// job is one store read for the shared worker pool.
type job struct {
	table string
	req   ReadRequest
	reply chan<- ReadResult
	done  <-chan struct{} // closed when the loop that asked is gone
}

// worker runs reads from the shared queue until ctx ends.
func (r *Resolver) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-r.jobs:
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			row, found, err := r.store.Get(rctx, j.table, j.req.Key, j.req.Level)
			cancel()
			res := ReadResult{Key: j.req.Key, Seq: j.req.Seq, Level: j.req.Level, Row: row, Found: found, Err: err}
			select {
			case j.reply <- res:
			case <-j.done:
			}
		}
	}
}

// loop is the I/O around the Core of one partition. Only its goroutine
// touches the Core.
type loop struct {
	r         *Resolver
	table     string
	topic     string
	partition int32
	core      *Core
	m         *partitionMetrics

	results  chan ReadResult
	done     chan struct{}
	readQ    []ReadRequest // asked for, not yet handed to the pool
	reads    int           // handed to the pool, not yet answered
	pubQ     []intent.Event
	pubBatch []intent.Event // on its way to the bus
	pubDone  chan error
	timer    *time.Timer
	commit   int64 // last committed offset
	end      int64 // the partition's end when last asked (for the lag gauge)
	endAt    time.Time
	unmatLog time.Time

	// Group mode: events and offsets go through the member's pump.
	pump      *pump
	pubOffset int64 // the offset committed with pubBatch
	fatal     error // the membership failed: the loop stops
}

func (l *loop) run(ctx context.Context, rd intentlog.Reader, first []intentlog.Record) error {
	l.results = make(chan ReadResult, 64)
	l.done = make(chan struct{})
	l.pubDone = make(chan error, 1)
	l.timer = time.NewTimer(time.Hour)
	l.commit = l.core.Committed()
	defer close(l.done)
	defer l.timer.Stop()

	intents := make(chan []intentlog.Record, 1)
	readErr := make(chan error, 1)
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	go readIntents(rctx, rd, intents, readErr)

	if len(first) > 0 {
		l.core.Ingest(time.Now(), decode(first, l.m, l.r.cfg.Logger))
		l.handle(l.core.Ready())
	}
	tick := time.NewTicker(l.r.cfg.CommitInterval)
	defer tick.Stop()
	for {
		var in chan []intentlog.Record
		if l.core.Unresolved() < l.r.cfg.MaxUnresolved {
			in = intents // else: backpressure, stop reading until intents resolve
		}
		var jobs chan job
		var next job
		if len(l.readQ) > 0 {
			jobs, next = l.r.jobs, job{table: l.table, req: l.readQ[0], reply: l.results, done: l.done}
		}
		select {
		case <-ctx.Done():
			return l.drain()
		case recs := <-in:
			l.core.Ingest(time.Now(), decode(recs, l.m, l.r.cfg.Logger))
		case jobs <- next:
			l.readQ = l.readQ[1:]
			l.reads++
		case res := <-l.results:
			l.reads--
			l.m.observeRead(int(res.Level), res)
			l.core.ReadDone(time.Now(), res)
		case err := <-l.pubDone:
			l.published(err)
			if l.fatal != nil {
				return l.fatal
			}
		case <-l.timer.C:
			l.core.Tick(time.Now())
		case <-tick.C:
			l.commitOffset(ctx)
		case err := <-readErr:
			return fmt.Errorf("resolver: read %s/%d: %w", l.topic, l.partition, err)
		}
		l.handle(l.core.Ready())
	}
}

func readIntents(ctx context.Context, rd intentlog.Reader, out chan<- []intentlog.Record, errc chan<- error) {
	for {
		recs, err := rd.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				errc <- err
			}
			return
		}
		select {
		case out <- recs:
		case <-ctx.Done():
			return
		}
	}
}

// handle carries out what the Core asked for.
func (l *loop) handle(rd Ready) {
	for _, rq := range rd.Reads {
		if rq.Level > 0 {
			l.m.escalations.Inc()
		}
	}
	l.readQ = append(l.readQ, rd.Reads...)
	if len(rd.Events) > 0 {
		l.pubQ = append(l.pubQ, rd.Events...)
		l.startPublish()
	}
	for _, u := range rd.Unmaterialized {
		l.unmaterialized(u)
	}
	if rd.Wake.IsZero() {
		l.timer.Stop()
	} else {
		l.timer.Reset(time.Until(rd.Wake))
	}
}

// startPublish sends the queued events to the bus unless a batch is
// already on its way: one batch at a time keeps each key's events in order.
func (l *loop) startPublish() {
	if l.pubBatch != nil || len(l.pubQ) == 0 {
		return
	}
	n := min(len(l.pubQ), maxPublishBatch)
	l.pubBatch = l.pubQ[:n:n]
	l.pubQ = l.pubQ[n:]
	batch := l.pubBatch
	if l.pump != nil {
		l.transactAsync(batch)
		return
	}
	go func() { l.pubDone <- l.publishRetrying(batch) }()
}

// transactAsync hands a batch (maybe empty: offsets only) and the offset
// below every unresolved intent to the member's next transaction.
func (l *loop) transactAsync(batch []intent.Event) {
	l.pubBatch = batch
	l.pubOffset = l.core.Committed()
	off := l.pubOffset
	go func() { l.pubDone <- l.transactRetrying(batch, off) }()
}

// transactRetrying publishes a batch with the partition's offset in one
// transaction, retrying aborted ones (nothing of them is visible) until
// one commits or the loop is gone. A fenced member or a transaction of
// unknown outcome ends the membership.
func (l *loop) transactRetrying(batch []intent.Event, offset int64) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var recs map[string][]*intentlog.Record
	if len(batch) > 0 {
		topic, rs, err := l.r.bus.Records(l.table, batch)
		if err != nil {
			return fmt.Errorf("%w: encode events: %w", errMembership, err)
		}
		recs = map[string][]*intentlog.Record{topic: rs}
	}
	backoff := l.r.cfg.BackoffMin
	var logged time.Time
	for start := time.Now(); ; {
		err := l.pump.do(ctx, &txnRequest{recs: recs, topic: l.topic, part: l.partition, offset: offset, done: l.done})
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, ErrAborted):
			return fmt.Errorf("%w: %s/%d: %w", errMembership, l.topic, l.partition, err)
		}
		l.m.publishErrors.Inc()
		if time.Since(start) > 5*time.Second && time.Since(logged) > 5*time.Second {
			logged = time.Now()
			l.r.cfg.Logger.Warn("resolver transactions keep aborting; events of this partition wait",
				"table", l.table, "partition", l.partition, "for", time.Since(start).Round(time.Second), "err", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, l.r.cfg.BackoffMax)
	}
}

// publishRetrying appends a batch to the bus, retrying with backoff until
// it succeeds or the loop is gone. A failed append may still have landed in
// part (a log that timed out after the write), so before each retry it
// reads what reached the bus since the first attempt and publishes only the
// rest: the loop is the only writer of its bus partition.
func (l *loop) publishRetrying(batch []intent.Event) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.done: // nobody waits for this batch any more
			cancel()
		case <-ctx.Done():
		}
	}()
	since := time.Now().Add(-time.Minute)
	backoff := l.r.cfg.BackoffMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(backoff*2, l.r.cfg.BackoffMax)
			last, err := l.r.bus.LastVersions(ctx, l.table, l.partition, since)
			if err != nil {
				l.m.publishErrors.Inc()
				continue
			}
			if batch = unpublished(batch, last); len(batch) == 0 {
				return nil
			}
		}
		err := l.r.bus.Publish(ctx, l.table, batch)
		if err == nil {
			return nil
		}
		l.m.publishErrors.Inc()
	}
}

// unpublished returns the events of batch not yet on the bus.
func unpublished(batch []intent.Event, last map[string]uint64) []intent.Event {
	var out []intent.Event
	for _, e := range batch {
		if e.Version > last[string(e.Key)] {
			out = append(out, e)
		}
	}
	return out
}

func (l *loop) published(err error) {
	batch := l.pubBatch
	l.pubBatch = nil
	if err != nil {
		// The loop is gone (nothing of this batch is committed), or, in
		// group mode, the membership failed.
		if errors.Is(err, errMembership) {
			l.fatal = err
		}
		return
	}
	if l.pump != nil {
		l.commit = max(l.commit, l.pubOffset)
	}
	now := time.Now()
	for i := range batch {
		l.m.observeEvent(&batch[i], now)
	}
	l.core.Published(now, batch)
	l.startPublish()
}

func (l *loop) unmaterialized(u Unmaterialized) {
	l.m.unmaterialized.Add(float64(len(u.Versions)))
	if time.Since(l.unmatLog) < time.Second {
		return // logged once a second at most; the counter has them all
	}
	l.unmatLog = time.Now()
	l.r.cfg.Logger.Warn("intent unmaterialized: the store never showed its version within the visibility window; no event",
		"table", l.table, "partition", l.partition, "key", printable(u.Key), "versions", u.Versions, "store_version", u.Seen)
}

// commitOffset stores the lowest unresolved offset if it moved.
func (l *loop) commitOffset(ctx context.Context) {
	c := l.core.Committed()
	if c != l.commit && l.pump != nil {
		if l.pubBatch == nil { // else the batch on its way carries an offset
			l.transactAsync([]intent.Event{})
		}
	} else if c != l.commit {
		if err := l.r.log.Commit(ctx, l.r.cfg.Group, l.topic, map[int32]int64{l.partition: c}); err != nil {
			l.m.commitErrors.Inc()
			return
		}
		l.commit = c
	}
	if time.Since(l.endAt) >= lagEvery {
		if _, end, err := l.r.log.Bounds(ctx, l.topic, l.partition); err == nil {
			l.end, l.endAt = end, time.Now()
		}
	}
	l.m.lag.Set(float64(max(l.end, l.core.Next()) - c))
}

// lagEvery is how often a loop asks the log for its partition's end, for
// the lag gauge (on Kafka, two ListOffsets that the loop waits for); in
// between, the end is at least the offset after what it read.
const lagEvery = 5 * time.Second

// drain finishes the reads and publishes in flight (issuing no new reads),
// then commits.
func (l *loop) drain() error {
	deadline := time.NewTimer(l.r.cfg.DrainTimeout)
	defer deadline.Stop()
	for l.reads > 0 || l.pubBatch != nil {
		select {
		case res := <-l.results:
			l.reads--
			l.core.ReadDone(time.Now(), res)
			rd := l.core.Ready()
			rd.Reads = nil
			l.handle(rd)
		case err := <-l.pubDone:
			l.published(err)
			rd := l.core.Ready()
			rd.Reads = nil
			l.handle(rd)
		case <-deadline.C:
			l.r.cfg.Logger.Warn("resolver drain timed out; unfinished intents resolve after restart",
				"table", l.table, "partition", l.partition, "reads", l.reads)
			l.commitFinal()
			return nil
		}
	}
	l.commitFinal()
	return nil
}

func (l *loop) commitFinal() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c := l.core.Committed(); l.pump != nil && c != l.commit && l.pubBatch == nil {
		err := l.pump.do(ctx, &txnRequest{topic: l.topic, part: l.partition, offset: c, done: l.done})
		if err == nil {
			l.commit = c
		}
	} else if l.pump == nil {
		l.commitOffset(ctx)
	}
	if c := l.core.Committed(); c != l.commit {
		l.r.cfg.Logger.Error("resolver could not commit its final offset; intents after the last commit are re-read after restart",
			"table", l.table, "partition", l.partition, "offset", c)
	}
}

// printable shows a key as text when it is, else as hex.
func printable(key []byte) string {
	for _, b := range key {
		if b < 0x20 || b > 0x7e {
			return "0x" + hex.EncodeToString(key)
		}
	}
	return string(key)
}
