// Package proxy is wail's dumb producer proxy. For every mutation it stamps
// a version from the hybrid logical clock, appends an intent (table, key, op,
// version, id — never the value) to the intent log and waits until it is
// durable, then writes the store with last-writer-wins on the version, and
// answers what was logged and what was stored. It never parses values and
// never waits on consumers.
//
// Failure handling per table:
//   - transactional: if the intent cannot be logged the mutation fails with
//     Unavailable and the store is not touched;
//   - independent: the store is written anyway and the answer says
//     intent_logged=false (no event is guaranteed for that write).
//
// If the store write fails after the intent was logged, the mutation fails
// and the proxy appends a best-effort ABORT intent so the resolver stops
// waiting for that version.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// Sentinel errors; the API maps them to gRPC/Connect codes.
var (
	// ErrUnknownTable: NotFound.
	ErrUnknownTable = errors.New("unknown table")
	// ErrInvalid: InvalidArgument (empty or oversized key, oversized value, bad op).
	ErrInvalid = errors.New("invalid mutation")
	// ErrUnavailable: Unavailable (intent log or store failed; retry).
	ErrUnavailable = errors.New("unavailable")
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

// Limits bound what the proxy accepts.
type Limits struct {
	MaxKeyBytes   int
	MaxValueBytes int
	MaxBatch      int
}

// Mutation is one write.
type Mutation struct {
	Table  string
	Key    []byte
	Value  []byte
	Delete bool
}

// Result says what happened to one Mutation.
type Result struct {
	Version      uint64
	IntentLogged bool
	Stored       bool
	Superseded   bool
	Err          error
}

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
}

// New returns a proxy. m may be nil (metrics are kept but not registered).
func New(log Log, st Store, tables Tables, clock *hlc.Clock, limits Limits, m *Metrics) *Proxy {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Proxy{log: log, store: st, tables: tables, clock: clock, limits: limits, metrics: m, abortTimeout: 5 * time.Second}
}

// Write runs mutations through the write path. A batch may span tables; each
// mutation gets its own Result. Mutations of one table share one intent
// append and one store write.
func (p *Proxy) Write(ctx context.Context, muts []Mutation) []Result {
	res := make([]Result, len(muts))
	byTable := map[string][]int{}
	var order []string
	for i := range muts {
		t, err := p.validate(&muts[i])
		if err != nil {
			res[i].Err = err
			continue
		}
		if _, ok := byTable[t.Name]; !ok {
			order = append(order, t.Name)
		}
		byTable[t.Name] = append(byTable[t.Name], i)
	}
	for _, name := range order {
		t, _ := p.tables.Get(name)
		p.writeTable(ctx, t, muts, byTable[name], res)
	}
	p.metrics.observe(muts, res)
	return res
}

func (p *Proxy) validate(m *Mutation) (catalog.Table, error) {
	t, ok := p.tables.Get(m.Table)
	switch {
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

// writeTable is the write path for the mutations idx of one table:
// stamp, log the intents, write the store, log ABORTs if the store failed.
func (p *Proxy) writeTable(ctx context.Context, t catalog.Table, muts []Mutation, idx []int, res []Result) {
	now := time.Now()
	recs, smuts := p.stamp(t.Name, muts, idx, res, now)
	logged := true
	if err := p.log.Append(ctx, intent.Topic(t.Name), recs); err != nil {
		logged = false
		p.metrics.intentErrors.Inc()
		if t.FailureMode == catalog.Transactional {
			for _, i := range idx {
				res[i].Err = fmt.Errorf("%w: the intent log did not take the intent, nothing was written: %v", ErrUnavailable, err)
			}
			return
		}
	}
	// The resolver may see the intent as soon as it is durable, which can be
	// long before the append returns here (a lost acknowledgement, retried
	// after a broker restart), and gives up after the visibility window.
	// So the store write must end within one window of the stamp: at most
	// half of it for the append, half for the store write.
	if took := time.Since(now); logged && took > t.VisibilityWindow/2 {
		for _, i := range idx {
			res[i].IntentLogged = true
			res[i].Err = fmt.Errorf("%w: the intent log took %s, over half the visibility window (%s); nothing was written, retry",
				ErrUnavailable, took.Round(time.Millisecond), t.VisibilityWindow)
		}
		p.metrics.slowAppends.Inc()
		p.abort(t.Name, smuts, now)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, t.VisibilityWindow/2)
	outs, err := p.store.Apply(sctx, t.Name, smuts)
	cancel()
	if err != nil {
		p.metrics.storeErrors.Inc()
		for _, i := range idx {
			res[i].IntentLogged = logged
			res[i].Err = fmt.Errorf("%w: the store write failed after the intent was logged (an ABORT intent follows): %v", ErrUnavailable, err)
		}
		if logged {
			p.abort(t.Name, smuts, now)
		}
		return
	}
	for j, i := range idx {
		res[i].IntentLogged = logged
		res[i].Stored = outs[j].Applied
		res[i].Superseded = !outs[j].Applied
		if !outs[j].Applied {
			p.clock.Observe(outs[j].Current) // another proxy's clock is ahead: follow it
		}
	}
}

// stamp gives each mutation its version and builds its intent record and
// its store mutation.
func (p *Proxy) stamp(table string, muts []Mutation, idx []int, res []Result, now time.Time) ([]*intentlog.Record, []store.Mutation) {
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
		recs[j] = p.intentRecord(table, m.Key, op, v, now)
		smuts[j] = store.Mutation{Key: m.Key, Value: m.Value, Version: v, Delete: m.Delete}
	}
	return recs, smuts
}

func (p *Proxy) intentRecord(table string, key []byte, op intent.Op, v uint64, now time.Time) *intentlog.Record {
	in := intent.Intent{
		Table: table, Key: key, Op: op, Version: v, ProxyID: p.clock.ProxyID(), CreatedAt: now,
		ID: strconv.FormatUint(uint64(p.clock.ProxyID()), 10) + "-" + strconv.FormatUint(v, 10),
	}
	if op == intent.Abort {
		in.ID += "-abort"
	}
	// Marshal fails only on invalid UTF-8 in string fields; the table name
	// is validated ASCII and the id is digits.
	b, _ := in.Marshal()
	return &intentlog.Record{Key: key, Value: b}
}

// abort logs ABORT intents for store writes that failed. Best effort: if
// this fails too, the resolver waits out the visibility window instead.
func (p *Proxy) abort(table string, smuts []store.Mutation, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), p.abortTimeout)
	defer cancel()
	recs := make([]*intentlog.Record, 0, len(smuts))
	for _, m := range smuts {
		recs = append(recs, p.intentRecord(table, m.Key, intent.Abort, m.Version, now))
	}
	if err := p.log.Append(ctx, intent.Topic(table), recs); err != nil {
		p.metrics.abortErrors.Inc()
	}
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
