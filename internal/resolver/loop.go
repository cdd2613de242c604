package resolver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/landing"
)

// maxPublishBatch bounds the events of one bus append, maxLetterBatch the
// letters of one dead-letter append; both are bounded by bytes too (the
// log's AppendLimit).
const (
	maxPublishBatch = 4096
	maxLetterBatch  = 256
)

// maxJobs bounds a loop's publisher jobs on their way: with overlap, two
// jobs of records and a commit.
const maxJobs = 3

// loop is the I/O around the Core of one partition. Only its goroutine
// touches the Core. Its output (events, dead letters, offset commits) goes
// through its publisher in jobs: one at a time, or overlapping (see
// overlap); a key has one event on its way at a time, so its events keep
// their order.
type loop struct {
	r         *Resolver
	table     string
	def       catalog.Table // as the catalog had it at the last commit tick
	topic     string
	partition int32
	core      *Core
	m         *partitionMetrics
	pub       publisher
	health    partitionHealth

	results chan []ReadResult
	done    chan struct{} // closed when run returns
	readQ   []ReadRequest // asked for, not yet handed to the pool
	// held are reads waiting for the store write of their version, by
	// that write (landing.go); landed receives the writes that ended.
	held    map[*landing.Write][]ReadRequest
	landed  chan landed
	reads   int // handed to the pool, not yet answered (reads, not jobs)
	pubQ    []intent.Event
	letterQ []Letter
	// eventBytes and letterBytes bound the records of one append to the
	// event topic and to the dead-letter topic (AppendLimit); letterRecord
	// bounds one dead-letter record (RecordLimit, at most letterBytes).
	eventBytes, letterBytes, letterRecord int
	// lettersFailing: the last append of dead letters failed (the
	// condition says so: observeHealth); letterTooLarge: the key of a
	// letter the dead-letter topic refused as too large on its own
	// (lettersRefused), until a letter lands.
	lettersFailing bool
	letterTooLarge string
	// refused: a job of letters the dead-letter topic refused as too
	// large, judged (lettersRefused) once the loop read the limits again
	// (run): the topic's limit may have been lowered since it was read.
	refused *pubJob
	// refusals counts the appends of letters refused as too large in a
	// row (lettersRefused), until letters land.
	refusals int
	job      *pubJob // on its way (with overlap: the older of the jobs of records)
	jobDone  chan *pubJob
	// overlap: the publisher takes jobs at the same time (overlapping).
	// Then a second job of events starts while the first is on its way
	// (extra), so that its records are encoded and queued while the log
	// makes the first durable, and commits run apart from the jobs of
	// records (committing), so that no event waits for a commit's
	// fsyncs. The jobs on their way carry events of different keys (a
	// key has one event out at a time), so their order on the bus is
	// free. Without overlap (a transactional publisher commits the
	// offset with the records) jobs go one at a time, in order.
	overlap           bool
	extra, committing *pubJob
	jobCtx            context.Context // ends when the loop is gone or the drain gives up
	stopJob           context.CancelFunc
	timer             *time.Timer
	commit            int64 // last committed offset
	// commitDue: the commit interval passed; commit unless a job carried
	// the offset meanwhile.
	commitDue bool
	// suspect are keys whose event failed alone while the bus took the
	// others: their events go in appends of their own, so that the others
	// are not bisected again with them.
	suspect map[string]bool
	end     int64 // the partition's end when last asked (for the lag gauge)
	endAt   time.Time
	// lastCreated is the creation of the last intent read (lag in seconds).
	lastCreated time.Time
	logged      map[string]time.Time // rate limit of warnings, by kind
	fatal       error                // the membership failed: the loop stops
	lowerTo     int64                // >= 0: the log diverged there (a truncation); commits go no further
	epochs      *epochSource         // the epochs of the offsets the publisher commits (nil: none)
	hang        hangWatch
}

func newLoop(r *Resolver, table string, p int32, core *Core) *loop {
	l := &loop{
		r: r, table: table, topic: intent.Topic(table), partition: p, core: core,
		results: make(chan []ReadResult, 64), done: make(chan struct{}), jobDone: make(chan *pubJob, maxJobs),
		logged: map[string]time.Time{}, suspect: map[string]bool{},
		held: map[*landing.Write][]ReadRequest{}, landed: make(chan landed),
		eventBytes: DefaultAppendBytes, letterBytes: DefaultAppendBytes, letterRecord: DefaultAppendBytes, lowerTo: -1,
	}
	l.jobCtx, l.stopJob = context.WithCancel(context.Background())
	l.health = newPartitionHealth(r.cfg.Health, table, p)
	return l
}

func (l *loop) run(ctx context.Context, rd intentlog.Reader, first []intentlog.Record) error {
	l.timer = time.NewTimer(time.Hour)
	l.commit = l.core.Committed()
	defer close(l.done)
	defer l.stopJob()
	defer l.timer.Stop()
	defer func() {
		l.health.clear()
		l.m.parked.Set(0)
		l.m.oldest.Set(0)
		l.m.lag.Set(0) // the next owner reports it (a rebalance, a drop, a restart)
		l.m.lagSeconds.Set(0)
	}()

	intents := make(chan []intentlog.Record, 1)
	readErr := make(chan error, 1)
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	go readIntents(rctx, rd, intents, readErr)

	if len(first) > 0 {
		l.ingest(first)
		l.handle(l.core.Ready())
	}
	tick := time.NewTicker(l.r.cfg.CommitInterval)
	defer tick.Stop()
	hctx, stopWatch := context.WithCancel(ctx)
	defer l.hang.wait()
	defer stopWatch()
	for {
		var in chan []intentlog.Record
		if l.core.Unresolved() < l.r.cfg.MaxUnresolved {
			in = intents // else: backpressure, stop reading until intents resolve
		}
		var jobs chan job
		var next job
		if len(l.readQ) > 0 {
			jobs, next = l.r.jobs, job{table: l.table, reqs: l.nextReads(), reply: l.results, done: l.done}
		}
		select {
		case <-ctx.Done():
			return l.drain()
		case recs := <-in:
			l.ingest(recs)
		case jobs <- next:
			l.readQ = l.readQ[len(next.reqs):]
			l.reads += len(next.reqs)
		case res := <-l.results:
			l.readsDone(res)
		case ld := <-l.landed:
			l.release(ld)
		case j := <-l.jobDone:
			l.finished(j)
			if l.fatal != nil {
				return l.fatal
			}
			if j := l.refused; j != nil {
				// Read again now, not at the next lagEvery: the log
				// reads the topic's limit again when a broker refuses
				// records as too large, and the letters are cut to the
				// limit read at their next try.
				l.refused = nil
				l.limits(ctx)
				l.lettersRefused(j, l.letterRecord < j.cutTo)
			}
		case <-l.timer.C:
			l.core.Tick(time.Now())
		case <-tick.C:
			l.tick(ctx)
			if l.follow() {
				return l.drain()
			}
			l.hang.check(hctx, l)
		case hung := <-l.hang.result:
			if err := l.hung(hung); err != nil {
				return err
			}
		case err := <-readErr:
			if tr, ok := errors.AsType[*intentlog.Truncation](err); ok && tr.From >= 0 {
				// The log lost intents it had read (an unclean leader
				// election): new ones take their offsets from tr.From
				// on. The final commit goes no further than that, and
				// the partition starts again there (runPartition).
				l.lowerTo = tr.From
				l.epochs.diverged(intentlog.EpochOffset{Offset: tr.From, Epoch: tr.Epoch}) // the final commit's epoch
				if err := l.drain(); err != nil {
					return err
				}
				return fmt.Errorf("%w: %s/%d: %w", errTruncated, l.topic, l.partition, err)
			}
			if tr, ok := errors.AsType[*intentlog.Truncation](err); ok && errors.Is(err, intentlog.ErrEpochUnknown) {
				// The reader's start (nothing read yet) could not be
				// validated: the partition starts again from the log's
				// start.
				if err := l.drain(); err != nil {
					return err
				}
				return l.r.epochUnknown(ctx, l.topic, l.partition, tr.Read, err)
			}
			if errors.Is(err, intentlog.ErrOffsetOutOfRange) {
				// Retention removed intents the reader had not read. Finish
				// what is in flight; the partition starts again from its
				// committed offset, which records the gap.
				if err := l.drain(); err != nil {
					return err
				}
				return fmt.Errorf("%w: %s/%d: %w", errGap, l.topic, l.partition, err)
			}
			return fmt.Errorf("resolver: read %s/%d: %w", l.topic, l.partition, err)
		}
		l.handle(l.core.Ready())
	}
}

func (l *loop) ingest(recs []intentlog.Record) {
	entries := decode(recs, l)
	for i := len(entries) - 1; i >= 0; i-- {
		if !entries[i].Invalid {
			l.lastCreated = entries[i].Intent.CreatedAt
			break
		}
	}
	l.core.Ingest(time.Now(), entries)
}

// lagSeconds is wail_resolver_lag_seconds at now: the age of the first
// unresolved intent read, or of the last intent read while the log's end
// is ahead of the reader, whichever is older.
func (l *loop) lagSeconds(now time.Time) float64 {
	var from time.Time
	if l.end > l.core.Next() {
		from = l.lastCreated
	}
	if o := l.core.OldestCreated(); !o.IsZero() && (from.IsZero() || o.Before(from)) {
		from = o
	}
	if from.IsZero() {
		return 0
	}
	return max(now.Sub(from), 0).Seconds()
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

// nextReads returns the reads of the next job, from the head of readQ
// (which it leaves as it is): one read for a store that reads one key per
// call, else up to maxReadBatch reads at the level of the first.
func (l *loop) nextReads() []ReadRequest {
	n := 1
	if l.r.multi != nil {
		for n < min(len(l.readQ), maxReadBatch) && l.readQ[n].Level == l.readQ[0].Level {
			n++
		}
	}
	return l.readQ[:n:n]
}

// readsDone takes the results of one job to the Core, all at the same
// time: the events they make go out in one append.
func (l *loop) readsDone(res []ReadResult) {
	now := time.Now()
	l.reads -= len(res)
	for i := range res {
		r := &res[i]
		l.m.observeRead(int(r.Level), *r)
		if r.Err != nil {
			l.warn("read", "store reads fail; the keys are parked and read again with backoff (dead-lettered after the table's max_attempts "+
				"only while the store serves other keys, never for \"store unavailable\")", "key", printable(r.Key), "level", r.Level, "probe", r.Probe, "err", r.Err)
		}
		l.core.ReadDone(now, *r)
	}
}

// handle carries out what the Core asked for.
func (l *loop) handle(rd Ready) {
	for _, rq := range rd.Reads {
		if rq.Level > 0 && !rq.Probe {
			l.m.escalations.Inc()
		}
	}
	l.queueReads(rd.Reads)
	l.pubQ = append(l.pubQ, rd.Events...)
	l.letterQ = append(l.letterQ, rd.Letters...)
	l.m.retries(rd.ReadRetries, rd.PublishRetries)
	for _, u := range rd.Unmaterialized {
		l.unmaterialized(u)
	}
	for _, u := range rd.Rechecked {
		l.lateCommit(u)
	}
	l.startJob()
	if rd.Wake.IsZero() {
		l.timer.Stop()
	} else {
		l.timer.Reset(time.Until(rd.Wake))
	}
}

// startJob sends the next job to the publisher unless one is on its way:
// a commit that is due, else the queued dead letters, else the queued
// events. A transactional publisher commits, with records, the offset the
// commit moves to once they are acknowledged (Core.CommitAfter). With
// overlap, a due commit goes apart from the jobs of records, and a second
// job of events may start while one is on its way (never beside letters,
// which go first).
func (l *loop) startJob() {
	if l.fatal != nil {
		return
	}
	if l.overlap {
		l.startCommit()
		if l.job != nil {
			if l.extra == nil && len(l.job.events) > 0 && len(l.letterQ) == 0 && len(l.pubQ) > 0 {
				l.extra = l.launch(l.eventsJob())
			}
			return
		}
	}
	if l.job != nil {
		return
	}
	var j *pubJob
	switch {
	case !l.overlap && l.commitDue && l.core.Committed() != l.commit:
		j = &pubJob{committed: -1, commitOnly: true, offset: l.core.Committed()}
	case len(l.letterQ) > 0:
		j = l.lettersJob()
	case len(l.pubQ) > 0:
		j = l.eventsJob()
	default:
		return
	}
	if !l.overlap {
		l.commitDue = false
	}
	l.job = l.launch(j)
}

// startCommit (with overlap) starts a commit when one is due, unless one
// is on its way: the commit is due again once it ended.
func (l *loop) startCommit() {
	if !l.commitDue || l.committing != nil {
		return
	}
	l.commitDue = false
	if c := l.core.Committed(); c != l.commit {
		l.committing = l.launch(&pubJob{committed: -1, commitOnly: true, offset: c})
	}
}

// launch runs a job on a goroutine of its own, which hands it back on
// jobDone.
func (l *loop) launch(j *pubJob) *pubJob {
	go func() { l.jobDone <- l.runJob(l.jobCtx, j) }()
	return j
}

// lettersJob takes up to maxLetterBatch letters off the queue, and
// letterBytes of records (at least one letter).
func (l *loop) lettersJob() *pubJob {
	j := &pubJob{committed: -1}
	now := time.Now()
	n, size := 0, 0
	for n < min(len(l.letterQ), maxLetterBatch) {
		if n > 0 && (l.suspect[string(l.letterQ[n].Key)] || l.suspect[string(l.letterQ[0].Key)]) {
			break // a letter refused as too large goes alone (lettersRefused)
		}
		ds := l.deadLetters(&l.letterQ[n], now)
		s := 0
		for _, d := range ds {
			s += letterBytes(d)
		}
		if n > 0 && size+s > l.letterBytes {
			break
		}
		j.records = append(j.records, ds...)
		size += s
		n++
	}
	j.letters, l.letterQ = l.letterQ[:n:n], l.letterQ[n:]
	j.cutTo = l.letterRecord
	keys := make([][]byte, len(j.letters))
	for i := range j.letters {
		keys[i] = j.letters[i].Key
	}
	j.offset = l.core.CommitAfter(keys)
	return j
}

// eventsJob takes the next batch of events off the queue. Without
// overlap it carries the offset to commit with them (with overlap the
// publisher commits apart: no offset).
func (l *loop) eventsJob() *pubJob {
	j := &pubJob{committed: -1, events: l.nextEvents()}
	j.apart = len(j.events) == 1 && l.suspect[string(j.events[0].Key)]
	if !l.overlap {
		keys := make([][]byte, len(j.events))
		for i := range j.events {
			keys[i] = j.events[i].Key
		}
		j.offset, j.base = l.core.CommitAfter(keys), l.core.Committed()
	}
	l.traceEvents(j)
	return j
}

// nextEvents takes the next batch of events off the queue: a suspect
// key's event alone, or the events of the others (in queue order; a key
// has one event queued at most), up to maxPublishBatch of them and
// eventBytes of records (at least one event).
func (l *loop) nextEvents() []intent.Event {
	if l.suspect[string(l.pubQ[0].Key)] {
		batch := l.pubQ[:1:1]
		l.pubQ = l.pubQ[1:]
		return batch
	}
	// Most calls take the whole queue, up to maxPublishBatch: one
	// allocation for the batch, not one per doubling of its size.
	batch := make([]intent.Event, 0, min(len(l.pubQ), maxPublishBatch))
	var rest []intent.Event
	size := 0
	for i, e := range l.pubQ {
		if l.suspect[string(e.Key)] {
			rest = append(rest, e)
			continue
		}
		n := eventbus.Size(&l.pubQ[i])
		if len(batch) == maxPublishBatch || len(batch) > 0 && size+n > l.eventBytes {
			rest = append(rest, l.pubQ[i:]...)
			l.pubQ = rest
			return batch
		}
		batch = append(batch, e)
		size += n
	}
	l.pubQ = rest
	return batch
}

// limits asks the log how large an append to the event topic and to the
// dead-letter topic may be (DefaultAppendBytes when it does not tell).
func (l *loop) limits(ctx context.Context) {
	l.eventBytes = l.r.appendLimit(ctx, eventbus.Topic(l.table))
	l.letterBytes = l.r.appendLimit(ctx, dlq.Topic(l.table))
	l.letterRecord = min(l.letterBytes, l.r.recordLimit(ctx, dlq.Topic(l.table)))
}

// RecordLimiter is a log that tells how large one record may be (the
// embedded and Kafka logs can); Config.Limits may be one.
type RecordLimiter interface {
	// RecordLimit returns the largest record, counted with the log's
	// framing, that an append to topic takes, and which setting says so.
	RecordLimit(ctx context.Context, topic string) (int, string, error)
}

// recordLimit returns how large one record of topic may be
// (DefaultAppendBytes when the log does not tell).
func (r *Resolver) recordLimit(ctx context.Context, topic string) int {
	rl, ok := r.cfg.Limits.(RecordLimiter)
	if !ok {
		return DefaultAppendBytes
	}
	n, err := bounded(ctx, r.waits.step, func(ctx context.Context) (int, error) {
		n, _, err := rl.RecordLimit(ctx, topic)
		return n, err
	})
	if err != nil || n <= 0 {
		return DefaultAppendBytes
	}
	return n
}

func (r *Resolver) appendLimit(ctx context.Context, topic string) int {
	if r.cfg.Limits == nil {
		return DefaultAppendBytes
	}
	n, err := bounded(ctx, r.waits.step, func(ctx context.Context) (int, error) {
		return r.cfg.Limits.AppendLimit(ctx, topic)
	})
	if err != nil || n <= 0 {
		return DefaultAppendBytes
	}
	return n
}

// finished takes the outcome of a job back to the Core.
func (l *loop) finished(j *pubJob) {
	switch j {
	case l.committing:
		l.committing = nil
	case l.extra:
		l.extra = nil
	default:
		l.job, l.extra = l.extra, nil
	}
	if j.fatal != nil {
		l.fatal = j.fatal
		return
	}
	if j.committed >= 0 {
		l.commit = max(l.commit, j.committed)
	}
	now := time.Now()
	j.endTraces(now)
	switch {
	case j.commitOnly:
		if j.err != nil {
			l.m.commitErrors.Inc()
		}
	case len(j.letters) > 0:
		if j.err != nil {
			l.m.letterErrors.Inc()
			if errors.Is(j.err, intentlog.ErrTooLarge) {
				l.refused = j // judged by run, once the limits are read again
			} else {
				l.warn("dlq", "dead letters cannot be written; their intents wait (the partition's committed offset stays below them) and "+
					"are written again with backoff", "err", j.err)
			}
			l.core.LetterFailed(now, j.letters, j.err)
			l.lettersFailing = true
			break
		}
		l.lettersFailing, l.letterTooLarge, l.refusals = false, "", 0
		l.lettered(j.letters)
		for i := range j.letters {
			delete(l.suspect, string(j.letters[i].Key))
		}
		l.core.Lettered(now, j.letters)
	default:
		for i := range j.ok {
			st, _ := l.core.EventStats(j.ok[i].Key)
			l.m.observeEvent(&j.ok[i], st, now)
			delete(l.suspect, string(j.ok[i].Key))
		}
		l.core.Published(now, j.ok)
		for _, f := range j.fails {
			if f.Alone && len(j.ok) > 0 {
				l.suspect[string(f.Event.Key)] = true
			}
		}
		if len(j.fails) > 0 {
			l.m.publishErrors.Add(float64(len(j.fails)))
			f := j.fails[0]
			l.warn("publish", "event publishes fail; the keys are parked and published again with backoff (an event the bus can never take "+
				"is dead-lettered at once, others after the table's max_attempts only while the bus takes other events)",
				"key", printable(f.Event.Key), "version", f.Event.Version, "failed", len(j.fails), "err", f.Err)
			l.core.PublishFailed(now, j.fails)
		}
	}
	l.startJob()
}

// lettered logs and counts letters made durable.
func (l *loop) lettered(ls []Letter) {
	for i := range ls {
		lt := &ls[i]
		l.m.deadLetters(lt.Kind).Inc()
		var versions []uint64
		for _, in := range lt.Intents[:min(len(lt.Intents), 10)] {
			versions = append(versions, in.Version)
		}
		l.logEvery("letter", time.Second, func() {
			l.r.cfg.Logger.Error("resolver dead-lettered intents: their key gets no event for them until redriven. "+
				"See them with `wail dlq ls "+l.table+"`; once the cause is fixed, `wail dlq redrive "+l.table+" OFFSET` (or --all) "+
				"resolves the keys again from the store's current state",
				"table", l.table, "partition", l.partition, "key", printable(lt.Key), "kind", lt.Kind.String(), "versions", versions,
				"intents", len(lt.Intents), "attempts", lt.Attempts, "permanent", lt.Permanent, "err", lt.Err)
		})
	}
}

func (l *loop) unmaterialized(u Unmaterialized) {
	l.m.unmaterialized.Add(float64(len(u.Versions)))
	l.logEvery("unmaterialized", time.Second, func() {
		msg := "intent unmaterialized: the store never showed its version within the visibility window; no event"
		if l.r.cfg.Recheck > 0 {
			msg += " unless its recheck finds it"
		}
		l.r.cfg.Logger.Warn(msg, "table", l.table, "partition", l.partition, "key", printable(u.Key), "versions", u.Versions, "store_version", u.Seen)
	})
}

func (l *loop) lateCommit(u Unmaterialized) {
	l.m.lateCommits.Add(float64(len(u.Versions)))
	l.logEvery("late commit", time.Second, func() {
		l.r.cfg.Logger.Warn("a write committed after its visibility window: the recheck found it, and its event came late. "+
			"The store's commits (or the network) are slower than the window allows: raise the table's visibility window "+
			"(`wail table alter`), and check the database's commit latency (fsync, CPU)",
			"table", l.table, "partition", l.partition, "key", printable(u.Key), "versions", u.Versions)
	})
}

// warnEvery is how often a partition logs a kind of failure it retries.
const warnEvery = 10 * time.Second

func (l *loop) warn(kind, msg string, args ...any) {
	l.logEvery(kind, warnEvery, func() {
		l.r.cfg.Logger.Warn("resolver: "+msg, append([]any{"table", l.table, "partition", l.partition}, args...)...)
	})
}

// logEvery runs log unless it ran for kind less than every ago (the
// metrics count everything).
func (l *loop) logEvery(kind string, every time.Duration, log func()) {
	if time.Since(l.logged[kind]) < every {
		return
	}
	l.logged[kind] = time.Now()
	log()
}

// tick runs every commit interval: commit, gauges, health.
func (l *loop) tick(ctx context.Context) {
	l.commitDue = true
	l.startJob()
	c := l.core.Committed()
	if time.Since(l.endAt) >= lagEvery {
		// On the loop's goroutine: bounded, so that a partition without
		// a leader delays no publish or commit for long (the gauge waits).
		// A failure waits for the next lagEvery too.
		bctx, cancel := context.WithTimeout(ctx, lagAsk)
		if _, end, err := l.r.log.Bounds(bctx, l.topic, l.partition); err == nil {
			l.end = end
		}
		l.endAt = time.Now()
		cancel()
		l.limits(ctx) // an operator may change a Kafka topic's max.message.bytes
	}
	l.m.lag.Set(float64(max(l.end, l.core.Next()) - c))
	l.m.lagSeconds.Set(l.lagSeconds(time.Now()))
	l.observeHealth(time.Now())
}

// lagEvery is how often a loop asks the log for its partition's end, for
// the lag gauge (on Kafka, two ListOffsets that the loop waits for); in
// between, the end is at least the offset after what it read.
const lagEvery = 5 * time.Second

// lagAsk bounds that ask (two ListOffsets that take milliseconds).
const lagAsk = time.Second

// drain finishes the reads and the jobs in flight (issuing no new reads,
// retrying nothing: a parked key waits for the next owner), then commits.
func (l *loop) drain() error {
	deadline := time.NewTimer(l.r.cfg.DrainTimeout)
	defer deadline.Stop()
	for l.reads > 0 || l.publishing() {
		select {
		case res := <-l.results:
			l.readsDone(res)
		case j := <-l.jobDone:
			l.finished(j)
			if l.fatal != nil {
				return l.fatal
			}
		case <-deadline.C:
			l.r.cfg.Logger.Warn("resolver drain timed out; unfinished intents resolve after restart",
				"table", l.table, "partition", l.partition, "reads", l.reads, "publishing", l.publishing())
			l.stopJob()
			l.commitFinal()
			return nil
		}
		rd := l.core.Ready()
		rd.Reads = nil
		l.handle(rd)
	}
	l.commitFinal()
	return nil
}

// publishing reports whether a job of the publisher is on its way.
func (l *loop) publishing() bool { return l.job != nil || l.extra != nil || l.committing != nil }

func (l *loop) commitFinal() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := l.core.Committed()
	if l.lowerTo >= 0 {
		c = min(c, l.lowerTo)
	}
	if c == l.commit {
		return
	}
	if err := l.pub.commit(ctx, c); err != nil {
		l.r.cfg.Logger.Error("resolver could not commit its final offset; intents after the last commit are re-read after restart",
			"table", l.table, "partition", l.partition, "offset", c, "err", err)
		return
	}
	l.commit = c
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
