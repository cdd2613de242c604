// Package resolver is wail's smart consumer. It reads intents, reads the
// current state of their keys back from the store, and publishes final
// events: per key strictly in order, across keys in parallel.
//
// The decisions are made by Core, a deterministic state machine per
// partition (core.go) that does no I/O. The rest is the I/O around it
// (this file, loop.go, publisher.go, landing.go): one goroutine per
// partition feeds it intents, read results, publish acknowledgements and
// clock ticks, runs the reads it asks for on a pool
// bounded across all partitions, appends its events to the bus in batches
// (a key has one event on its way at a time, so its events keep their
// order), and commits its offset.
//
// Goroutines per partition: the loop (owns the Core), one intent reader, at
// most maxJobs publisher jobs (one in Kafka transactions), and one waiter per store write in flight that its
// held reads wait on (landing.go); reads run on a pool of Config.Concurrency
// workers shared by every partition, in batches (one GetMany each on a
// store.MultiGetter). All are supervised by an errgroup or end with the
// loop; the loop is the only one that touches the Core, so the Core needs
// no lock.
//
// On Kafka (Config.Join set) the resolver is a consumer-group member
// (group.go): it runs loops only for the partitions assigned to it, and
// publishes events with their offsets through per-process transaction
// pumps instead of the bus and the log's Commit.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/landing"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// Log is the intent log as the resolver uses it.
type Log interface {
	// Append is for intents of keys to resolve again (see unhang).
	Append(ctx context.Context, topic string, recs []*intentlog.Record) error
	Bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error)
	OffsetForTime(ctx context.Context, topic string, partition int32, t time.Time) (int64, error)
	NewReader(topic string, partition int32, offset int64) (intentlog.Reader, error)
	// Lost is for offsets a repair removed (see recordLost).
	Lost(ctx context.Context, topic string, partition int32) ([]intentlog.Range, error)
	Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error
	Committed(ctx context.Context, group, topic string) (map[int32]int64, error)
}

// Store is the store as the resolver uses it.
type Store interface {
	Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error)
	Levels() []string
}

// Bus is the event bus as the resolver uses it.
type Bus interface {
	Publish(ctx context.Context, table string, events []intent.Event) error
	// Records returns what Publish would append, for a transaction.
	Records(ctx context.Context, table string, events []intent.Event) (string, []*intentlog.Record, error)
	// End is the offset the next event of a partition gets;
	// LastVersionsOf returns each key's last version in the events from an
	// offset on (what a failed append may have written).
	End(ctx context.Context, table string, partition int32) (int64, error)
	LastVersionsOf(ctx context.Context, table string, partition int32, from int64, want func(key []byte) bool) (eventbus.Retained, error)
	// Recover is LastVersions for a new owner of the partition, plus what
	// it needs to end hanging transactions there (see unhang).
	Recover(ctx context.Context, table string, partition int32, since time.Time, w eventbus.RecoverWaits) (eventbus.Recovered, error)
	// Hanging reports whether a hanging transaction holds the partition
	// (see hang.go); the partition then starts again, and Recover ends it.
	Hanging(ctx context.Context, table string, partition int32) (bool, error)
}

// AppendLimiter is a log that tells how large one append may be (the
// embedded and Kafka logs can).
type AppendLimiter interface {
	// AppendLimit returns the largest total of records, each counted with
	// the log's framing, that one append to a partition of topic takes;
	// more may fail as a whole with intentlog.ErrTooLarge.
	AppendLimit(ctx context.Context, topic string) (int, error)
}

// DefaultAppendBytes bounds the records of one append when the log does
// not tell its limit (Config.Limits): Kafka's default max.message.bytes.
const DefaultAppendBytes = 1 << 20

// Config configures a Resolver.
type Config struct {
	Group          string
	Concurrency    int
	FirstReadDelay time.Duration
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	Horizon        time.Duration
	CommitInterval time.Duration
	MaxUnresolved  int
	// DrainTimeout bounds how long shutdown waits for reads and publishes
	// in flight.
	DrainTimeout time.Duration
	// RetryMin and RetryMax bound the backoff of a key whose read or
	// publish failed (Params; 0: the defaults). The tables' MaxAttempts and
	// MaxRetryTime bound how long it is retried.
	RetryMin, RetryMax time.Duration
	// Recheck reads a key once more, at the strongest level, this many
	// visibility windows after an intent of it expired unmaterialized,
	// and publishes a write that committed after the window (Params.Recheck,
	// recheck.go; 0: no rechecks; the configuration's default is 1).
	Recheck float64
	// StallAfter: a partition whose oldest unresolved intent waits longer
	// (and at least twice its table's visibility window, plus its
	// recheck) is reported stalled on Health (0: DefaultStallAfter).
	StallAfter time.Duration
	// HangCheck is how often a partition asks the bus whether a hanging
	// transaction holds its events (hang.go; 0: DefaultHangCheck).
	HangCheck time.Duration
	// InstanceID names this resolver in the dead letters it writes.
	InstanceID string
	// Health, when set, receives the partitions' health conditions.
	Health  HealthSink
	Logger  *slog.Logger
	Metrics *Metrics
	// Tracing, when set, makes each event of traced intents a span of
	// their trace (trace.go).
	Tracing *telemetry.Tracing
	// Limits, when set, is the log under the event bus and the dead-letter
	// topics: the events, or dead letters, of one append stay within its
	// AppendLimit (else within DefaultAppendBytes), so that an append of
	// many large records does not fail as a whole.
	Limits AppendLimiter
	// Join, when set, makes the resolver a member of Group (group.go):
	// it resolves only the partitions the group assigns it and publishes
	// in transactions. Without it, the resolver owns every partition.
	Join JoinFunc
	// TransactionLinger (with Join) is the least time between the starts
	// of two transactions of one producer: what is ready meanwhile goes
	// in the next (0: back to back).
	TransactionLinger time.Duration
	// Tables, when set, says whether a table is still to be resolved and
	// its current definition (catalog.Catalog.Resolving); see tables.go.
	Tables func(name string) (catalog.Table, bool)
	// CatalogFresh (with Tables), when set, says whether this process's
	// copy of the catalog is recent enough to know every alter made
	// elsewhere (catalog.Catalog.Fresh on a shared store): while it is
	// not, no intent is given up (Core.HoldExpiry), since a window
	// lengthened elsewhere would not be seen here.
	CatalogFresh func() error
	// CatalogRefresh (with Tables) is how long another process may go on
	// serving a table's definition after it was altered (catalog_refresh):
	// a visibility window an alter shortened applies only to the intents
	// ingested once no write admitted under the old one can land
	// (Core.SetWindow).
	CatalogRefresh time.Duration
	// Landing, when set, knows the store writes in flight of the proxy in
	// this process: a read of a version whose write has not returned yet
	// is held until it has (at most the table's visibility window), so
	// that it finds the write instead of the old row (landing.go).
	Landing Landing
	// LocalProxy, when LocalProxyServes is set, is the id of the proxy
	// that serves writes in this process (so Landing knows its writes in
	// flight): with a store of one read level, its intents are read
	// without FirstReadDelay. Unset in a resolver-only process, whose
	// proxy_id may well equal a remote proxy's.
	LocalProxy       uint32
	LocalProxyServes bool
	// ReadBackWrites (with Landing): a read held on a store write reads
	// the store once the write ended, instead of taking the row the write
	// stored (landing.go).
	ReadBackWrites bool
}

// Landing tells whether the store write of a version is in flight in
// this process (package landing implements it).
type Landing interface {
	// Pending returns nil when no store write of version of table is in
	// flight, else one that holds it (once it ended, ask again).
	Pending(table string, version uint64) *landing.Write
}

// Resolver resolves the intents of every table it is given.
type Resolver struct {
	log   Log
	store Store
	bus   Bus
	cfg   Config
	// multi is store when it reads many keys in one call (nil: one Get
	// per read).
	multi store.MultiGetter
	jobs  chan job // reads for the worker pool, from every partition
	runs  runs     // partitions running per table (Stopped)
	waits startWaits
}

// startWaits bound the steps of a partition's start that ask the log or
// the bus (a field for tests): the partition's context does not end while
// it is owned, so a broken cluster that does not answer held the start for
// ever, with nothing logged or raised. Past its bound a step fails; the
// start is then logged, raises resolver/<table>/<p> and is tried again.
type startWaits struct {
	// step bounds each call of the log or bus: the committed offsets,
	// the log's bounds, the first read, ending a hang (and its intents'
	// append), and the start's writes: a retention gap's letter and the
	// commit past it, lowering a committed offset beyond the log's end,
	// the letters of offsets a repair lost.
	// It also bounds each question the bus's recovery asks (the offset
	// for a time, the event partition's bounds).
	step time.Duration
	// recoverStall bounds how long the bus's recovery, which reads every
	// event published since the oldest unresolved intent (minus the
	// horizon), may read nothing: that read is work, which on a big
	// partition takes as long as it takes, so it has no total bound (a
	// total cut off a scan that was getting on, and the start began it
	// again from the same point, for ever). It must stay well above the
	// 30 s after which a Kafka transaction counts as hanging: the scan
	// stops at a hang until then, and Recover ends it.
	recoverStall time.Duration
}

// defaultStartWaits: 30 s for an answer (the Kafka log's request timeout),
// 2 minutes without progress for the recovery's read.
var defaultStartWaits = startWaits{step: 30 * time.Second, recoverStall: 2 * time.Minute}

// New returns a resolver.
func New(log Log, st Store, bus Bus, cfg Config) *Resolver {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = DefaultStallAfter
	}
	if cfg.HangCheck <= 0 {
		cfg.HangCheck = DefaultHangCheck
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	multi, _ := st.(store.MultiGetter)
	return &Resolver{log: log, store: st, bus: bus, cfg: cfg, multi: multi, jobs: make(chan job), waits: defaultStartWaits}
}

// Run resolves every partition of the given tables and of each table that
// arrives on more, until ctx ends; then it drains and commits. It returns
// the first error that stops a partition for good.
func (r *Resolver) Run(ctx context.Context, tables []catalog.Table, more <-chan catalog.Table) error {
	// The read pool outlives ctx: draining partitions still read.
	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	for i := 0; i < r.cfg.Concurrency; i++ {
		workers.Go(func() { r.worker(workCtx) })
	}
	defer func() {
		stopWorkers()
		workers.Wait()
	}()
	if r.cfg.Join != nil {
		return r.runGroup(ctx, tables, more)
	}
	g, ctx := errgroup.WithContext(ctx)
	start := func(t catalog.Table) {
		for p := int32(0); p < t.Partitions; p++ {
			g.Go(func() error { return r.runPartition(ctx, t, p, nil) })
		}
	}
	for _, t := range tables {
		start(t)
	}
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case t := <-more:
				start(t)
			}
		}
	})
	return g.Wait()
}

// runPartition resolves one partition until ctx ends. A failure to start
// (the log or bus unreachable) is retried with backoff; a failure of the
// group membership (pm) is returned.
func (r *Resolver) runPartition(ctx context.Context, t catalog.Table, p int32, pm *pump) error {
	defer r.runs.enter(t, p)()
	// Raised while the partition cannot start (its loop raises its own
	// conditions once it runs): else a partition whose start keeps
	// failing, as a Kafka partition without a leader, was only logged.
	startHealth := newPartitionHealth(r.cfg.Health, t.Name, p)
	defer startHealth.clear()
	// Raised once the log lost intents the partition had read, until it
	// stops: they may lack events (a reconcile publishes them).
	truncHealth := newPartitionHealth(r.cfg.Health, t.Name, p)
	truncHealth.component += "/truncated"
	defer truncHealth.clear()
	lowerTo := intentlog.EpochOffset{Offset: -1, Epoch: -1} // where the next start must begin at the latest
	backoff := r.cfg.BackoffMax
	for {
		cur, ok := r.current(t)
		if !ok {
			return nil // dropped
		}
		err := r.resolvePartition(ctx, cur, p, pm, lowerTo, func() {
			startHealth.clear()
			lowerTo = intentlog.EpochOffset{Offset: -1, Epoch: -1}
		})
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errMembership) {
			return err
		}
		if tr, ok := errors.AsType[*intentlog.Truncation](err); ok && errors.Is(err, errTruncated) {
			lowerTo = intentlog.EpochOffset{Offset: tr.From, Epoch: tr.Epoch}
			if errors.Is(err, intentlog.ErrEpochUnknown) {
				r.cfg.Logger.Error("resolver: the intent log has no record of the leader epoch committed with the partition's offset "+
					"(its leader-epoch history was lost, or the topic was deleted and created again): whether it lost intents below the offset "+
					"cannot be validated; reading again from the log's start so that no new intent is skipped. "+
					"Keys whose intents were lost may lack events: run `wail table reconcile "+t.Name+"`",
					"table", t.Name, "partition", p, "committed", tr.Read, "start", tr.From, "err", err)
				truncHealth.set(fmt.Sprintf("the intent log of table %s partition %d could not validate its committed offset %d (the leader epoch "+
					"committed with it is unknown to the log): it is read again from the log's start (%d)", t.Name, p, tr.Read, tr.From),
					"run `wail table reconcile "+t.Name+"` to publish the keys whose lost intents lack events, and check the Kafka cluster "+
						"(the partition's leader-epoch checkpoint, unclean.leader.election.enable); the condition clears when the partition stops "+
						"or the process restarts; see docs/operations.md, Resolver")
				continue
			}
			r.cfg.Logger.Error("resolver: the intent log lost intents after they were read (an unclean leader election, a broker that lost "+
				"acknowledged writes); reading again from where it diverges, so that the new intents there are not skipped. "+
				"Keys whose intents were lost may lack events: run `wail table reconcile "+t.Name+"`",
				"table", t.Name, "partition", p, "diverged_at", tr.From, "read_to", tr.Read, "err", err)
			truncHealth.set(fmt.Sprintf("the intent log of table %s partition %d lost intents after they were read (it diverges from offset %d; read to %d)",
				t.Name, p, tr.From, tr.Read),
				"run `wail table reconcile "+t.Name+"` to publish the keys whose lost intents lack events, and check the Kafka cluster "+
					"(unclean.leader.election.enable, replication); the condition clears when the partition stops or the process restarts; "+
					"see docs/operations.md, Resolver")
			continue // starts again at once, from where the log diverges
		}
		if errors.Is(err, errGap) || errors.Is(err, errHanging) {
			continue // starts again at once: records the gap, or ends the hang
		}
		r.cfg.Logger.Error("resolver partition stopped; restarting", "table", t.Name, "partition", p, "err", err, "retry_in", backoff)
		startHealth.set(fmt.Sprintf("table %s partition %d could not start or stopped (restarting every %s at most): %v",
			t.Name, p, maxRestartBackoff, err),
			"the error says what failed (the intent log, the event bus or the store); once it answers the partition starts by itself, "+
				"nothing is lost meanwhile (its intents wait in the log); see docs/operations.md, Resolver")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = nextBackoff(backoff)
	}
}

// maxRestartBackoff bounds the wait before a partition or a group
// membership that stopped starts again.
const maxRestartBackoff = 30 * time.Second

// nextBackoff is the wait before the next restart after one that waited
// b: doubling, up to maxRestartBackoff.
func nextBackoff(b time.Duration) time.Duration { return min(b*2, maxRestartBackoff) }

// localLanding says whether the intents of cfg.LocalProxy need no first
// read delay: that proxy serves writes in this process, Landing holds a
// read until its write returned, and with one read level such a read
// finds it (a replica or a read at ONE may lag it: the delay stays).
func localLanding(cfg Config, levels int) bool {
	return cfg.LocalProxyServes && cfg.Landing != nil && levels == 1
}

// resolvePartition recovers where the partition stopped and runs its loop;
// started is called once the loop is about to run. A committed offset
// above lowerTo (>= 0: where the log diverged from what an earlier run
// read) is lowered to it first. The reader starts at the committed offset
// with its leader epoch (epochs.go): a log that diverged below it fails
// the first read with a truncation (errTruncated), as while reading.
func (r *Resolver) resolvePartition(ctx context.Context, t catalog.Table, p int32, pm *pump, lowerTo intentlog.EpochOffset, started func()) error {
	topic := intent.Topic(t.Name)
	params := Params{
		Table: t.Name, Partition: p, Window: t.VisibilityWindow, Wide: t.WideWindow, WideUntil: t.WideUntil,
		Levels:     len(r.store.Levels()),
		BackoffMin: r.cfg.BackoffMin, BackoffMax: r.cfg.BackoffMax, Horizon: r.cfg.Horizon,
		FirstReadDelay: r.cfg.FirstReadDelay, LocalProxy: r.cfg.LocalProxy,
		LocalLanding: localLanding(r.cfg, len(r.store.Levels())),
		MaxAttempts:  int(t.MaxAttempts), MaxRetryTime: t.MaxRetryTime, RetryMin: r.cfg.RetryMin, RetryMax: r.cfg.RetryMax,
		Seed: uint64(time.Now().UnixNano()) ^ uint64(p)<<48, Recheck: r.cfg.Recheck,
	}
	l := newLoop(r, t.Name, p, nil)
	ran := false
	defer func() {
		if !ran {
			// What this partition sent the pump before its loop ran (a
			// gap letter) is dropped once it is gone: else a request
			// still queued when the partition was revoked went out after,
			// with an offset another owner may have moved on.
			close(l.done)
			l.stopJob()
		}
	}()
	epochs := &epochSource{known: lowerTo}
	l.epochs = epochs
	if pm != nil {
		l.pub = &txnPublisher{r: r, pump: pm, table: t.Name, topic: topic, part: p, done: l.done, epochs: epochs}
	} else {
		pub := newPlainPublisher(r, t.Name, p)
		pub.epochs = epochs
		l.pub = pub
		l.overlap = true // it commits apart from the records, and takes appends at the same time
	}
	l.health.stallAfter = max(r.cfg.StallAfter, stallFloor(t.VisibilityWindow, r.cfg.Recheck))
	l.limits(ctx)
	committed, err := bounded(ctx, r.waits.step, func(ctx context.Context) (map[int32]intentlog.EpochOffset, error) {
		return r.committed(ctx, topic)
	})
	if err != nil {
		return fmt.Errorf("resolver: committed offsets of %s: %w", topic, err)
	}
	var logStart, logEnd int64
	if err := boundedDo(ctx, r.waits.step, func(ctx context.Context) (err error) {
		logStart, logEnd, err = r.log.Bounds(ctx, topic, p)
		return err
	}); err != nil {
		return fmt.Errorf("resolver: bounds of %s/%d: %w", topic, p, err)
	}
	at, ok := committed[p]
	from := at.Offset
	if ok && lowerTo.Offset >= 0 && from >= lowerTo.Offset { // (equal: the epoch committed could not be validated)
		// Durably first: a restart must not skip the new intents either.
		if err := boundedDo(ctx, r.waits.step, func(ctx context.Context) error { return l.pub.commit(ctx, lowerTo.Offset) }); err != nil {
			return fmt.Errorf("resolver: lower the committed offset %d of %s/%d to %d, where the log diverged: %w", from, topic, p, lowerTo.Offset, err)
		}
		at, from = lowerTo, lowerTo.Offset
	}
	switch {
	case !ok:
		from = logStart // a new group starts where the log does
	case from < logStart:
		// Retention removed intents that were never resolved: record the
		// gap before moving past it, unless an earlier run did (and then
		// crashed, or failed to commit, before moving past it: the plain
		// publisher writes the letter and commits in two steps; a
		// transaction does both or neither). Gaps are rare, and that run
		// may have been long ago: the letters are scanned from the
		// topic's start. A scan that fails costs a duplicate letter, not
		// the partition.
		gapFrom := from
		if pm == nil {
			found, err := scanLettersAt(ctx, r.log, t.Name, p, 0, true)
			if err == nil {
				gapFrom = found.gapEnd(from)
			} else if ctx.Err() != nil {
				return err
			}
		}
		if err := boundedDo(ctx, r.waits.step, func(ctx context.Context) error {
			return r.recordGap(ctx, l.pub, t.Name, p, gapFrom, logStart)
		}); err != nil {
			return err
		}
		from = logStart
	case from > logEnd:
		// The log lost its tail after the group committed (on Kafka an
		// unclean leader election, a broker that lost its disk; the
		// embedded log lowers such offsets at Open). New intents take
		// the lost offsets again, from a point Kafka does not tell (new
		// ones may be below the end already): read from the log's start
		// (what was resolved before is read again, which the bus's
		// recovered versions make harmless), never skip them. Lowered
		// durably first, so that a restart after the end passed the old
		// offset does not skip them either.
		if err := boundedDo(ctx, r.waits.step, func(ctx context.Context) error { return l.pub.commit(ctx, logStart) }); err != nil {
			return fmt.Errorf("resolver: lower the committed offset %d of %s/%d (beyond the log's end %d) to its start %d: %w",
				from, topic, p, logEnd, logStart, err)
		}
		r.cfg.Logger.Error("resolver: the committed offset is beyond the intent log's end: the log lost intents after they were read "+
			"(an unclean leader election, a broker that lost acknowledged writes, the topic created again with the group's offsets kept, "+
			"a log directory restored from an older backup); reading again from the log's start so that no new intent is skipped. "+
			"Keys whose intents were lost may lack events: run `wail table reconcile "+t.Name+"`",
			"table", t.Name, "partition", p, "committed", from, "end", logEnd, "start", logStart)
		from = logStart
	}
	if !ok || from != at.Offset {
		at = intentlog.EpochOffset{Offset: from, Epoch: -1} // a new group, moved past a gap, lowered to the start: nothing to validate
	}
	rd, err := r.newReader(topic, p, at)
	if err != nil {
		return fmt.Errorf("resolver: read %s/%d at %d: %w", topic, p, from, err)
	}
	defer rd.Close()
	if er, ok := rd.(intentlog.EpochReader); ok {
		epochs.rd = er
	}
	// The first record from the committed offset on tells when it was
	// logged (Next passes offsets lost to a repair without records).
	var first []intentlog.Record
	for len(first) == 0 && rd.Position() < logEnd {
		if first, err = bounded(ctx, r.waits.step, rd.Next); err != nil {
			if tr, ok := errors.AsType[*intentlog.Truncation](err); ok && tr.From >= 0 {
				// The log diverged below the committed offset while
				// no loop of the partition ran (its epoch validated).
				return fmt.Errorf("%w: %s/%d, starting at %d: %w", errTruncated, topic, p, from, err)
			}
			if errors.Is(err, intentlog.ErrEpochUnknown) {
				return r.epochUnknown(ctx, topic, p, from, err)
			}
			return fmt.Errorf("resolver: read %s/%d at %d: %w", topic, p, rd.Position(), err)
		}
	}
	// Everything published since the oldest unresolved intent was logged
	// (minus the horizon) may cover intents we are about to re-read, and
	// every dead letter written since may settle some.
	since := time.Now()
	if len(first) > 0 {
		if err := boundedDo(ctx, r.waits.step, func(ctx context.Context) (err error) {
			since, err = r.loggedBy(ctx, topic, p, first[0], since, logStart)
			return err
		}); err != nil {
			return fmt.Errorf("resolver: when %s/%d at %d was logged: %w", topic, p, first[0].Offset, err)
		}
	}
	rec, err := r.bus.Recover(ctx, t.Name, p, since.Add(-r.cfg.Horizon), eventbus.RecoverWaits{Call: r.waits.step, Stall: r.waits.recoverStall})
	if err != nil {
		return fmt.Errorf("resolver: recover published versions of %s/%d: %w", t.Name, p, err)
	}
	if rec.Unblock != nil {
		if err := r.unhang(ctx, t.Name, p, rec); err != nil {
			return err
		}
	}
	letters, err := scanLetters(ctx, r.log, t.Name, p, since.Add(-r.cfg.Horizon))
	if err != nil {
		return fmt.Errorf("resolver: recover the dead letters of %s/%d: %w", t.Name, p, err)
	}
	if err := boundedDo(ctx, r.waits.step, func(ctx context.Context) error {
		return r.recordLost(ctx, l.pub, t.Name, p, from, letters)
	}); err != nil {
		return err
	}
	l.core = NewCore(params, from, rec.Last)
	l.core.RememberSince(since.Add(-r.cfg.Horizon))
	l.core.AlreadySettled(letters.settled())
	l.m = r.cfg.Metrics.partition(t.Name, p, params.Levels)
	l.def = t
	// Not from the first commit tick only: a window shorter than
	// commit_interval ends before it.
	l.holdIfStale()
	ran = true
	started()
	return l.run(ctx, rd, first)
}

// loggedBy returns a time no later than when rec, the first intent from
// the committed offset on, was logged (give or take the clocks' skew,
// which the horizon the scans reach back covers): its timestamp, unless
// that is after now. A timestamp ahead of now (a log host's clock that
// jumped ahead, which the embedded log keeps until it passes; a Kafka
// producer's) says nothing of when it was logged: the last record before
// it stamped before now was logged before it, so its timestamp does
// (OffsetForTime: the first record stamped at or after now follows it);
// without one from start on, the Unix epoch (the scans read their topics
// from their starts). Before, now stood for it: it moved the scans past
// the events of the intents read again (TestRecoverFromFutureStampedIntent),
// and, for a restart more than the horizon after they were resolved (a
// crash before the commit, a key before them parked meanwhile), past their
// events and letters, which were published and written a second time
// (TestRecoverFromFutureStampedIntentAfterHorizon).
func (r *Resolver) loggedBy(ctx context.Context, topic string, p int32, rec intentlog.Record, now time.Time, start int64) (time.Time, error) {
	if rec.Timestamp.Before(now) {
		return rec.Timestamp, nil
	}
	off, err := r.log.OffsetForTime(ctx, topic, p, now)
	if err != nil {
		return time.Time{}, err
	}
	if off = min(off, rec.Offset); off <= start {
		return time.UnixMilli(0), nil
	}
	rd, err := r.log.NewReader(topic, p, off-1)
	if err != nil {
		return time.Time{}, err
	}
	defer rd.Close()
	for rd.Position() < off {
		recs, err := rd.Next(ctx)
		if err != nil {
			return time.Time{}, err
		}
		for _, b := range recs {
			if b.Offset < off && b.Timestamp.Before(now) {
				return b.Timestamp, nil
			}
		}
	}
	return time.UnixMilli(0), nil // the record before it lost (a repair), or not an intent (a Kafka control record)
}

// unhang deals with hanging transactions that held a bus partition (see
// eventbus.Recovered): it logs intents again for the keys of their events
// that readers have not seen, then aborts them. The intents are durable
// before the abort, so the keys resolve again (to their current state)
// even if this process stops right after it; a restart before the abort
// finds the hang again, and logging the same intents twice costs a read.
func (r *Resolver) unhang(ctx context.Context, table string, p int32, rec eventbus.Recovered) error {
	r.cfg.Metrics.hangs.WithLabelValues(table).Inc()
	r.cfg.Logger.Warn("resolver found a hanging Kafka transaction on its event partition (the broker lost its markers); "+
		"resolving its keys again and aborting it", "table", table, "partition", p, "keys", len(rec.Orphans))
	if len(rec.Orphans) > 0 {
		recs := make([]*intentlog.Record, 0, len(rec.Orphans))
		for _, e := range rec.Orphans {
			in := intent.Intent{Table: table, Key: e.Key, Op: e.Op, Version: e.Version,
				ID: "unhang:" + intent.EventID(table, e.Key, e.Version), CreatedAt: time.Now()}
			v, err := in.Marshal()
			if err != nil {
				return fmt.Errorf("resolver: %s/%d: intent for a hanging event: %w", table, p, err)
			}
			recs = append(recs, &intentlog.Record{Key: e.Key, Value: v})
		}
		// Bounded (startWaits): a log that refuses the records (Kafka:
		// fewer in-sync replicas than min.insync.replicas) is retried
		// until the context ends. The intents are idempotent, should
		// some of them land anyway.
		_, err := bounded(ctx, r.waits.step, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, r.log.Append(ctx, intent.Topic(table), recs)
		})
		if err != nil {
			return fmt.Errorf("resolver: %s/%d: log intents for hanging events: %w", table, p, err)
		}
	}
	if _, err := bounded(ctx, r.waits.step, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, rec.Unblock(ctx)
	}); err != nil {
		return fmt.Errorf("resolver: %s/%d: end the hanging transactions: %w", table, p, err)
	}
	return nil
}

// bounded runs a step of a partition's start for wait at most (see
// startWaits). Cut off by its bound (not by ctx), its error says so.
func bounded[T any](ctx context.Context, wait time.Duration, step func(context.Context) (T, error)) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := step(sctx)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		return v, fmt.Errorf("no answer within %s: %w", wait, err)
	}
	return v, err
}

// boundedDo is bounded for a step that returns only an error.
func boundedDo(ctx context.Context, wait time.Duration, step func(context.Context) error) error {
	_, err := bounded(ctx, wait, func(ctx context.Context) (struct{}, error) { return struct{}{}, step(ctx) })
	return err
}

// decode turns log records of l's partition into core entries.
func decode(recs []intentlog.Record, l *loop) []Entry {
	out := make([]Entry, len(recs))
	for i := range recs {
		out[i].Offset = recs[i].Offset
		in, err := intent.UnmarshalIntent(recs[i].Value)
		if err != nil {
			out[i].Invalid = true
			l.m.invalid.Inc()
			l.r.cfg.Logger.Warn("skipping an intent that cannot be decoded: no wail proxy, reconcile or redrive wrote it; "+
				"find what else writes to the intent topic and stop it",
				"table", l.table, "partition", l.partition, "offset", recs[i].Offset, "err", err)
			continue
		}
		out[i].Intent = in
	}
	return out
}
