// Package proxy is wail's dumb producer proxy. For every mutation it stamps
// a version from the hybrid logical clock, appends an intent (table, key, op,
// version, id — never the value) to the intent log and waits until it is
// durable, then writes the store with last-writer-wins on the version, and
// answers what was logged and what was stored. It never parses values and
// never waits on consumers.
//
// Failure handling (DESIGN.md, "Ambiguous store writes"): the append
// must end by half the table's visibility window after it began, the
// store write by three quarters.
//   - transactional: if the intent cannot be logged by then, the mutation
//     fails with Unavailable and the store is not touched (an intent that
//     was logged, but later than that, gets an ABORT intent);
//   - independent: the store is written anyway and the answer says
//     intent_logged=false (no event is guaranteed for that write).
//
// If the store says the write was not applied (store.ErrNotApplied) after
// the intent was logged, the mutation fails and the proxy appends a
// best-effort ABORT intent so the resolver stops waiting for that version.
// If the store write's outcome is unknown, no ABORT is logged: the
// resolver reads until the window ends, and the store bounds the write
// inside the database well before that.
//
// A value whose event could not fit the event bus is refused (envelope.go).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/landing"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// Sentinel errors; the API maps them to gRPC/Connect codes.
var (
	// ErrUnknownTable: NotFound.
	ErrUnknownTable = errors.New("unknown table")
	// ErrInvalid: InvalidArgument (empty or oversized key, oversized value, bad op).
	ErrInvalid = errors.New("invalid mutation")
	// ErrNoJSON: InvalidArgument. A value's JSON form was asked of a
	// table whose values are not typed.
	ErrNoJSON = errors.New("its values have no JSON form")
	// ErrUnavailable: Unavailable (intent log or store failed; retry).
	ErrUnavailable = errors.New("unavailable")
	// ErrLogRefused: FailedPrecondition. The intent log refused the
	// intent for a reason a retry does not change (a record over the
	// topic's limit, a missing topic, wail's credentials): an operator
	// must act; nothing was written.
	ErrLogRefused = errors.New("the intent log refused the intent")
)

// Log is where intents go.
type Log interface {
	Append(ctx context.Context, topic string, recs []*intentlog.Record) error
}

// Store is where rows go.
type Store interface {
	Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error)
	Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error)
	Levels() []string
}

// Tables resolves table definitions.
type Tables interface {
	Get(name string) (catalog.Table, bool)
}

// windows is Tables that hold a lengthened visibility window back for
// writes until every resolver took it up (catalog.Catalog.WriteWindow).
type windows interface {
	WriteWindow(t catalog.Table, now time.Time) time.Duration
}

// Limits bound what the proxy accepts.
type Limits struct {
	MaxKeyBytes   int
	MaxValueBytes int
	MaxBatch      int
	// WritesInFlight is how many batches of one table run the write path
	// at once; writes that arrive meanwhile wait and are merged (merge.go).
	// MaxMerge caps the mutations of a merged batch (one write larger
	// than that runs alone). Zero values: 4 and MaxBatch.
	WritesInFlight, MaxMerge int
	// MaxMergeBytes caps the rows (keys, values, documents) of a merged
	// batch, as MaxMerge caps its mutations (sizes.go). Zero:
	// DefaultMaxMergeBytes.
	MaxMergeBytes int
	// Bus, when set, is the log under the event bus: a value is refused
	// when its event would not fit a record there (see fitsBus), so that
	// no write is acknowledged whose event can never be published.
	Bus RecordLimiter
	// Intents, when set, is the intent log's bound on one Append: a
	// write's intents of a table must fit one (else it is refused), and a
	// merged batch stops there (sizes.go). Kafka's producer splits an
	// Append into record batches itself: no bound.
	Intents AppendLimiter
}

// AppendLimiter is an intent log that refuses an Append larger than a
// bound as a whole (the embedded log).
type AppendLimiter interface {
	// AppendLimit returns the largest total of records, each counted with
	// the log's own framing, that one Append to topic takes.
	AppendLimit(ctx context.Context, topic string) (int, error)
}

// RecordLimiter is a log that tells the largest record an Append to a
// topic takes (the embedded and Kafka logs can).
type RecordLimiter interface {
	// RecordLimit returns the largest record, counted with the log's own
	// per-record framing (not the batch's), that an Append to topic
	// takes, and what sets that limit, for messages.
	RecordLimit(ctx context.Context, topic string) (bytes int, source string, err error)
}

// Mutation is one write.
type Mutation struct {
	Table  string
	Key    []byte
	Value  []byte
	Delete bool
	// JSON: Value is the value message's Protobuf JSON, for a typed table;
	// the Validator converts it to binary (without one, it is refused).
	JSON bool
	// SchemaID and Doc are set by the Validator of a typed table: the
	// schema the value was checked against, kept with the row, and the
	// value as JSON for a store's queryable column (store.Mutation).
	SchemaID uint32
	Doc      []byte
	// StampBefore, when set, is a ServerTime of this proxy: a write it
	// comes to stamp at or after it is refused (ErrUnavailable), nothing
	// written. A client sets it from the time it sent the write, so that
	// an attempt delivered late, after the client wrote the key again, is
	// never stamped over that newer write (WriteStreamRequest.stamp_before).
	StampBefore uint64
}

// Result says what happened to one Mutation.
type Result struct {
	Version      uint64
	IntentLogged bool
	Stored       bool
	Superseded   bool
	Err          error
	// RetryAfter is the server's hint with an ErrOverloaded Err.
	RetryAfter time.Duration
}

// WithAdmission makes writes ask a first (see Admission); call it before
// serving.
func (p *Proxy) WithAdmission(a *Admission) *Proxy {
	p.admission = a
	return p
}

// DefaultWritesInFlight is Limits.WritesInFlight when unset.
const DefaultWritesInFlight = 4

// Proxy is the write path.
type Proxy struct {
	log     Log
	store   Store
	tables  Tables
	clock   *hlc.Clock
	limits  Limits
	metrics *Metrics
	// abortTimeout bounds the best-effort ABORT append.
	abortTimeout time.Duration
	// values, when set, checks keys and values before stamping; printer
	// prints typed values as JSON (values.go).
	values  Validator
	printer Printer
	tracing *telemetry.Tracing // nil: off

	mergeMu sync.Mutex
	mergers map[string]*merger // by table
	fixed   sync.Map           // table name → intentFixed (sizes.go)
	// stampDelay is MaxStampDelay (tests shorten it).
	stampDelay time.Duration
	// admission refuses writes past the resolver's rate (nil: never).
	admission *Admission
	// landing learns of each store write in flight (nil: nothing does).
	landing *landing.Writes
	// admit is asked right before stamping and, without hold, right
	// after (nil: always yes); hold, if set, right after (WithHold).
	admit func() error
	hold  func() (done func(), err error)
	// elapsed is the time since New ran, on the monotonic clock:
	// ServerTime counts from there (tests fix it).
	elapsed func() time.Duration
}

// New returns a proxy. m may be nil (metrics are kept but not registered).
func New(log Log, st Store, tables Tables, clock *hlc.Clock, limits Limits, m *Metrics) *Proxy {
	if m == nil {
		m = NewMetrics(nil)
	}
	if limits.WritesInFlight <= 0 {
		limits.WritesInFlight = DefaultWritesInFlight
	}
	if limits.MaxMerge <= 0 {
		limits.MaxMerge = max(limits.MaxBatch, 1)
	}
	return &Proxy{log: log, store: st, tables: tables, clock: clock, limits: limits, metrics: m, abortTimeout: 5 * time.Second,
		mergers: map[string]*merger{}, stampDelay: MaxStampDelay, elapsed: since(time.Now())}
}

// MaxBatch is the most mutations a batch may have
// (limits.max_batch_mutations): the API refuses larger batches whole.
func (p *Proxy) MaxBatch() int { return p.limits.MaxBatch }

// WithLanding tells ws of every store write from before its intents are
// appended until it returned (so that a resolver in this process holds
// its reads of those versions until then); call it before serving.
func (p *Proxy) WithLanding(ws *landing.Writes) *Proxy {
	p.landing = ws
	return p
}

// WithAdmit makes writes ask admit right before they are stamped and
// again right after (nil: never refused there); a refusal fails them
// unwritten, ErrUnavailable with its message. The server refuses there
// while the proxy id's lease is not valid: a write checked when it
// arrived can wait up to MaxStampDelay to be stamped, longer than the
// lease's margin, and the process can be paused between the last check
// and the stamp (see unstamped). Call it before serving.
func (p *Proxy) WithAdmit(admit func() error) *Proxy {
	p.admit = admit
	return p
}

// WithHold makes writes ask hold right after they are stamped, instead
// of admit: a refusal fails them unwritten, as admit's does; else done is
// called once their intents' append returned. The server holds the proxy
// id's lease so (lease.Keeper.Hold): it is given up at shutdown only once
// the intents of every version stamped under it are in the log, where the
// next holder's clock observes them. Call it before serving.
func (p *Proxy) WithHold(hold func() (done func(), err error)) *Proxy {
	p.hold = hold
	return p
}

// WithTracing traces writes (nil: off) and returns p.
func (p *Proxy) WithTracing(t *telemetry.Tracing) *Proxy {
	p.tracing = t
	return p
}

// gate is the last check before a write is stamped, which can be up to
// MaxStampDelay after its Write call checked the same (it waited in its
// table's merge queue, or for the other tables of its request): the table
// still takes writes and is the one the write was checked against (a
// drop waits for the writes that started before it saw the drop, not for
// those still queued), and admit still lets writes through.
func (p *Proxy) gate(t catalog.Table) error {
	if p.replaced(t) {
		return fmt.Errorf("%w: %q (dropped while the write waited to be stamped; nothing was written)", ErrUnknownTable, t.Name)
	}
	if p.admit != nil {
		if err := p.admit(); err != nil {
			return fmt.Errorf("%w: %v; nothing was written", ErrUnavailable, err)
		}
	}
	return nil
}

// replaced reports whether t is no longer the table of its name: dropped,
// or dropped and created again.
func (p *Proxy) replaced(t catalog.Table) bool {
	cur, ok := p.tables.Get(t.Name)
	return !ok || !cur.CreatedAt.Equal(t.CreatedAt)
}

// unstamped asks again, once the mutations idx are stamped, whether
// they may be written: hold if set, else admit. If not, they are answered
// with the refusal, their versions dropped unused, and it reports true;
// else done is to be called once their intents' append returned. A
// version carries the wall time it was stamped at: the lease must be
// valid after that clock was read, not only before. A process paused
// between the two (GC, SIGSTOP) past its lease wakes up with a clock in
// the times of the process that took the proxy id meanwhile, and would
// stamp its versions.
func (p *Proxy) unstamped(idx []int, res []Result) (done func(), refused bool) {
	done = func() {}
	var err error
	switch {
	case p.hold != nil:
		done, err = p.hold()
	case p.admit != nil:
		err = p.admit()
	}
	if err == nil {
		return done, false
	}
	for _, i := range idx {
		res[i].Version = 0
		res[i].Err = fmt.Errorf("%w: %v; nothing was written", ErrUnavailable, err)
	}
	return nil, true
}

// gated answers the mutations idx with the gate's refusal, and reports
// true, when gate refuses t.
func (p *Proxy) gated(t catalog.Table, idx []int, res []Result) bool {
	err := p.gate(t)
	if err == nil {
		return false
	}
	for _, i := range idx {
		res[i].Err = err
	}
	return true
}

// Write runs mutations through the write path. A batch may span tables; each
// mutation gets its own Result. Mutations of one table share one intent
// append and one store write. With tracing, the batch is a span (a child
// of ctx's, e.g. the caller's traceparent) that its intents carry.
func (p *Proxy) Write(ctx context.Context, muts []Mutation) []Result {
	arrived := time.Now()
	ctx, span := p.tracing.Start(ctx, "wail.write", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	res := make([]Result, len(muts))
	byTable := map[string][]int{}
	checked := map[string]catalog.Table{} // the table each was checked against
	var order []string
	for i := range muts {
		t, err := p.validate(&muts[i])
		if err == nil {
			err = p.checkValue(ctx, t, &muts[i])
		}
		if err == nil {
			err = p.fitsBus(ctx, t.Name, &muts[i])
		}
		if err == nil {
			err = p.fitsStore(&muts[i])
		}
		if err != nil {
			res[i].Err = err
			continue
		}
		if _, ok := byTable[t.Name]; !ok {
			order = append(order, t.Name)
			checked[t.Name] = t
		}
		byTable[t.Name] = append(byTable[t.Name], i)
	}
	for _, name := range order {
		// Run against the table the mutations were checked against (their
		// values against its schema): one dropped since, perhaps created
		// again (the other tables of the request ran meanwhile), is not
		// theirs.
		t := checked[name]
		if p.replaced(t) {
			for _, i := range byTable[name] {
				res[i].Err = fmt.Errorf("%w: %q (dropped since the write was checked; nothing was written)", ErrUnknownTable, name)
			}
			continue
		}
		sz := sizeOf(p.intentFixedOf(name), muts, byTable[name])
		limit, err := p.fitsAppend(ctx, name, sz, len(byTable[name]))
		if err != nil {
			for _, i := range byTable[name] {
				res[i].Err = err
			}
			continue
		}
		if wait, err := p.admission.Admit(name); err != nil {
			for _, i := range byTable[name] {
				res[i].Err, res[i].RetryAfter = err, wait
			}
			continue
		}
		p.writeMerged(ctx, t, muts, byTable[name], res, arrived, sz, limit)
		for _, i := range byTable[name] {
			if res[i].Err == nil {
				p.metrics.partitions.add(name, t.Partitions, muts[i].Key)
			}
		}
	}
	p.metrics.observe(muts, res)
	return res
}

func (p *Proxy) validate(m *Mutation) (catalog.Table, error) {
	t, ok := p.tables.Get(m.Table)
	switch {
	case !ok && store.ValidateTableName(m.Table) != nil: // no table can have it: creating one would fail
		return t, fmt.Errorf("%w: %w", ErrUnknownTable, store.ValidateTableName(m.Table))
	case !ok:
		return t, fmt.Errorf("%w %q (create it with `wail table create %s`)", ErrUnknownTable, m.Table, m.Table)
	case len(m.Key) == 0:
		return t, fmt.Errorf("%w: key is empty", ErrInvalid)
	case len(m.Key) > p.limits.MaxKeyBytes:
		return t, fmt.Errorf("%w: key is %d bytes, the limit is %d (limits.max_key_bytes)", ErrInvalid, len(m.Key), p.limits.MaxKeyBytes)
	case len(m.Value) > p.limits.MaxValueBytes:
		return t, fmt.Errorf("%w: value is %d bytes, the limit is %d (limits.max_value_bytes)", ErrInvalid, len(m.Value), p.limits.MaxValueBytes)
	}
	return t, nil
}

// Deadlines of a write, as fractions of its table's visibility window W,
// counted from when the proxy begins to log its intents (t0). The resolver
// gives up on an intent no earlier than W after it saw it, and it cannot
// see it before t0: a store write must be over, inside the database, by
// t0 + W. The append may take until t0 + W/2; the store write is bounded
// (by the store, inside the database) by t0 + 3W/4; the last quarter is
// the slack for what that bound cannot count (see DESIGN.md, "Ambiguous
// store writes").
const (
	appendShare = 2 // the append ends by t0 + W/appendShare
	storeNum    = 3 // the store write ends by t0 + storeNum*W/storeDen
	storeDen    = 4
)

// step is what a write does once its intent append ended.
type step int

const (
	writeStore step = iota // write the store
	refuse                 // fail; the intent was not logged, the store is left alone
	refuseLate             // fail; the intent was logged after W/2: ABORT it, the store is left alone
)

// afterAppend decides what a write to a table in mode with visibility
// window w does after an append that took took and logged the intents
// or not, and whether that append counts as slow (it took W/2 or more:
// cut off at its deadline, or overran it). An independent table writes
// the store whatever the append did; any other goes on only with its
// intents logged by t0 + W/2: a log that answered later would leave the
// store write less than its share of the window.
func afterAppend(mode catalog.FailureMode, logged bool, took, w time.Duration) (next step, slow bool) {
	slow = took >= w/appendShare
	if mode == catalog.Independent {
		return writeStore, slow
	}
	if !logged {
		return refuse, slow
	}
	if took > w/appendShare {
		return refuseLate, slow
	}
	return writeStore, slow
}

// appendRefusal is the error of a write refused because its intents were
// not logged: err is the append's, cutOff whether its context ended (the
// caller's, ctx, or half the visibility window, half). It names the
// cause: only a log that did not answer in time is about the window.
func appendRefusal(ctx context.Context, cutOff bool, err error, half time.Duration, topic string) error {
	switch {
	case errors.Is(err, intentlog.ErrTooLarge):
		return fmt.Errorf("%w: %w; nothing was written: the intent (key, table, id, version, trace context; never the value) "+
			"is larger than the intent topic %s takes; raise the topic's max.message.bytes (Kafka) or shorten the key, "+
			"a retry fails the same way", ErrLogRefused, err, topic)
	case errors.Is(err, intentlog.ErrUnknownTopic):
		return fmt.Errorf("%w: %w; nothing was written: the table's intent topic %s is missing from the log (deleted outside wail?); "+
			"a wail process creates it again when it starts or refreshes its catalog: `wail doctor` says whether it is back",
			ErrLogRefused, err, topic)
	case errors.Is(err, intentlog.ErrAccessDenied):
		return fmt.Errorf("%w: %w; nothing was written: the log refused wail's credentials or their permission to write %s; "+
			"grant wail's principal Write and Describe on the topic (Kafka ACLs) or fix its credentials (log.kafka.sasl)",
			ErrLogRefused, err, topic)
	case errors.Is(err, intentlog.ErrClosed):
		return fmt.Errorf("%w: the intent log is closed (the server is stopping), nothing was written; retry on another instance or after the restart: %w",
			ErrUnavailable, err)
	case cutOff && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("the request's deadline passed before the intent log took the intent, nothing was written: %w", ctx.Err())
	case cutOff && ctx.Err() != nil:
		return fmt.Errorf("the request was canceled before the intent log took the intent, nothing was written: %w", ctx.Err())
	case cutOff:
		// The proxy's own deadline, not the caller's: unavailable.
		return fmt.Errorf("%w: the intent log did not take the intent within half the visibility window (%s), nothing was written; retry: %v",
			ErrUnavailable, half, err)
	}
	return fmt.Errorf("%w: the intent log failed: %v; nothing was written, retry", ErrUnavailable, err)
}

// writeTable is the write path for the mutations idx of one table:
// stamp, log the intents, write the store, log ABORTs if the store
// definitely did not apply the write.
func (p *Proxy) writeTable(ctx context.Context, t catalog.Table, muts []Mutation, idx []int, res []Result) {
	if p.gated(t, idx, res) {
		return
	}
	now := time.Now()
	w := t.VisibilityWindow
	if ws, ok := p.tables.(windows); ok {
		w = ws.WriteWindow(t, now)
	}
	var tp string
	if p.tracing.On() {
		tp = telemetry.Traceparent(trace.SpanContextFromContext(ctx))
	}
	recs, smuts := p.stamp(t.Name, muts, idx, res, now, tp)
	held, refused := p.unstamped(idx, res)
	if refused {
		return
	}
	// Known in flight before its intents can be read; over once this
	// returns, whatever the store write did.
	lw := p.inFlight(t.Name, smuts)
	defer lw.End()
	actx, cancel := context.WithDeadline(ctx, now.Add(w/appendShare))
	actx, span := p.tracing.Start(actx, "wail.intent.append")
	err := p.log.Append(actx, intent.Topic(t.Name), recs)
	cutOff := actx.Err() != nil // before cancel: the caller's deadline or W/2 passed
	held()
	endSpan(span, err)
	cancel()
	took := time.Since(now)
	tm := p.metrics.table(t.Name)
	tm.append.Observe(took.Seconds())
	defer observeSince(tm.write, now)
	logged := err == nil
	next, slow := afterAppend(t.FailureMode, logged, took, w)
	if !logged {
		p.metrics.intentErrors.Inc()
	}
	if slow {
		p.metrics.slowAppends.Inc() // cut off at its deadline, or overran it
	}
	switch next {
	case refuse:
		refusal := appendRefusal(ctx, cutOff, err, w/appendShare, intent.Topic(t.Name))
		for _, i := range idx {
			res[i].Err = refusal
		}
		return
	case refuseLate:
		for _, i := range idx {
			res[i].IntentLogged = true
			res[i].Err = fmt.Errorf("%w: the intent log took %s, over half the visibility window (%s); nothing was written, retry",
				ErrUnavailable, took.Round(time.Millisecond), w)
		}
		p.abort(t.Name, smuts, now)
		return
	}
	// An independent table writes the store whatever the append did: an
	// intent cut off at its deadline may still reach the log later, and
	// then the resolver reads this write's version like any other, since
	// the write is over by t0 + W, before the resolver can give up on it.
	sctx, cancel := context.WithDeadline(ctx, now.Add(w*storeNum/storeDen))
	began := time.Now()
	sctx, span = p.tracing.Start(sctx, "wail.store.write")
	outs, err := p.store.Apply(sctx, t.Name, smuts)
	endSpan(span, err)
	observeSince(tm.store, began)
	cancel()
	if err != nil {
		p.storeFailed(t, smuts, idx, res, logged, now, err)
		return
	}
	lw.Stored(smuts, outs) // the resolver of this process may take these rows instead of reading them back
	for j, i := range idx {
		res[i].IntentLogged = logged
		res[i].Stored = outs[j].Applied
		res[i].Superseded = !outs[j].Applied
		if !outs[j].Applied {
			p.clock.Observe(outs[j].Current) // another proxy's clock is ahead: follow it
		}
	}
}

// inFlight tells the landing set (if any) of the store write of smuts,
// whose versions were stamped in increasing order.
func (p *Proxy) inFlight(table string, smuts []store.Mutation) *landing.Write {
	if len(smuts) == 0 {
		return nil
	}
	return p.landing.Begin(table, smuts[0].Version, smuts[len(smuts)-1].Version)
}

// storeFailed answers the mutations idx of a store write that failed. An
// ABORT intent is logged only when the store says that the write did not
// and will not commit (store.ErrNotApplied): the resolver then settles the
// intents at once. Otherwise the outcome is unknown and the resolver must
// keep reading until the visibility window ends (the store bounds the
// write inside the database well before that).
func (p *Proxy) storeFailed(t catalog.Table, smuts []store.Mutation, idx []int, res []Result, logged bool, now time.Time, err error) {
	notApplied := errors.Is(err, store.ErrNotApplied)
	if notApplied {
		p.metrics.storeErrors.WithLabelValues("not_applied").Inc()
	} else {
		p.metrics.storeErrors.WithLabelValues("unknown").Inc()
	}
	for _, i := range idx {
		res[i].IntentLogged = logged
		switch {
		case notApplied && logged:
			res[i].Err = fmt.Errorf("%w: the store did not apply the write (an ABORT intent follows); retry: %v", ErrUnavailable, err)
		case notApplied:
			res[i].Err = fmt.Errorf("%w: the store did not apply the write; retry: %v", ErrUnavailable, err)
		case logged:
			res[i].Err = fmt.Errorf("%w: the store write's outcome is unknown, it may have been stored (then its event follows within the visibility window): "+
				"read the key to know, or write again (a new write, with a new version): %v", ErrUnavailable, err)
		default:
			res[i].Err = fmt.Errorf("%w: the store write's outcome is unknown, it may have been stored (no event is guaranteed: its intent was not logged): "+
				"read the key to know, or write again (a new write, with a new version): %v", ErrUnavailable, err)
		}
	}
	if notApplied && logged {
		p.abort(t.Name, smuts, now)
	}
}

// ServerTime is this process's monotonic clock, in nanoseconds from an
// origin of its own (never 0): what write-stream answers tell clients
// (server_time) and what Mutation.StampBefore is compared with. Never
// the wall clock or the HLC: a clock set back or stepped forward (NTP)
// would move a bound the client set from it.
func (p *Proxy) ServerTime() uint64 { return uint64(p.elapsed()) + 1 }

// since returns the time since start, on the monotonic clock.
func since(start time.Time) func() time.Duration {
	return func() time.Duration { return time.Since(start) }
}

// stamp gives each mutation its version and builds its intent record and
// its store mutation.
func (p *Proxy) stamp(table string, muts []Mutation, idx []int, res []Result, now time.Time, trace string) ([]*intentlog.Record, []store.Mutation) {
	recs := make([]*intentlog.Record, len(idx))
	smuts := make([]store.Mutation, len(idx))
	for j, i := range idx {
		m := &muts[i]
		v := p.clock.Now()
		res[i].Version = v
		op := intent.Upsert
		if m.Delete {
			op = intent.Delete
		}
		recs[j] = p.intentRecord(table, m.Key, op, v, now, trace)
		smuts[j] = store.Mutation{Key: m.Key, Value: m.Value, Version: v, Delete: m.Delete, SchemaID: m.SchemaID, Doc: m.Doc}
	}
	return recs, smuts
}

func (p *Proxy) intentRecord(table string, key []byte, op intent.Op, v uint64, now time.Time, trace string) *intentlog.Record {
	// The id "<proxy>-<version>[-abort]", built in place: one allocation.
	var buf [64]byte
	id := strconv.AppendUint(buf[:0], uint64(p.clock.ProxyID()), 10)
	id = strconv.AppendUint(append(id, '-'), v, 10)
	if op == intent.Abort {
		id = append(id, "-abort"...)
	}
	in := intent.Intent{
		Table: table, Key: key, Op: op, Version: v, ProxyID: p.clock.ProxyID(), CreatedAt: now, Trace: trace,
		ID: string(id),
	}
	// Marshal fails only on invalid UTF-8 in string fields; the table name
	// is validated ASCII and the id is digits. The record's key is the
	// intent's own copy, not key: key is a slice of the whole request
	// (api's wire codec), which a log that holds the record past Append
	// (Kafka's producer, until the broker answers) would keep alive.
	b, k, _ := in.MarshalKeyed()
	return &intentlog.Record{Key: k, Value: b}
}

// abort logs ABORT intents for store writes that failed. Best effort: if
// this fails too, the resolver waits out the visibility window instead.
func (p *Proxy) abort(table string, smuts []store.Mutation, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), p.abortTimeout)
	defer cancel()
	recs := make([]*intentlog.Record, 0, len(smuts))
	for _, m := range smuts {
		recs = append(recs, p.intentRecord(table, m.Key, intent.Abort, m.Version, now, ""))
	}
	if err := p.log.Append(ctx, intent.Topic(table), recs); err != nil {
		p.metrics.abortErrors.Inc()
	}
}

func observeSince(o prometheus.Observer, t time.Time) { o.Observe(time.Since(t).Seconds()) }

// endSpan ends a span of a step, marked failed by err.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Get reads a key through to the store at its strongest level.
func (p *Proxy) Get(ctx context.Context, table string, key []byte) (store.Row, bool, error) {
	if _, err := p.validate(&Mutation{Table: table, Key: key}); err != nil {
		return store.Row{}, false, err
	}
	row, found, err := p.store.Get(ctx, table, key, store.Level(len(p.store.Levels())-1))
	if err != nil {
		return row, false, fmt.Errorf("%w: read %s: %v", ErrUnavailable, table, err)
	}
	return row, found, nil
}
