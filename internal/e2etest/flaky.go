package e2etest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

type storedRow struct {
	value   string
	deleted bool
}

// flakyStore fails about one Apply in failEvery: half of the failures
// happen before the write (nothing stored, store.ErrNotApplied: the proxy
// logs an ABORT), half after it (stored, but the proxy is told it failed
// with an unknown outcome: the resolver must find the write). It records
// every version the store applied.
type flakyStore struct {
	store.Store
	failEvery int
	calls     atomic.Int64
	failures  atomic.Int64
	// before and after count the injected failures of each kind, so a run
	// can prove both happened.
	before, after atomic.Int64

	mu     sync.Mutex
	stored map[string]map[uint64]storedRow // applied for sure
	maybe  map[string]map[uint64]storedRow // Apply failed for real: may have committed
}

func (f *flakyStore) record(into map[string]map[uint64]storedRow, m store.Mutation) {
	k := string(m.Key)
	if into[k] == nil {
		into[k] = map[uint64]storedRow{}
	}
	into[k][m.Version] = storedRow{value: string(m.Value), deleted: m.Delete}
}

func newFlakyStore(st store.Store, failEvery int) *flakyStore {
	return &flakyStore{Store: st, failEvery: failEvery, stored: map[string]map[uint64]storedRow{}, maybe: map[string]map[uint64]storedRow{}}
}

var (
	errInjected      = fmt.Errorf("%w: injected store failure", store.ErrNotApplied)
	errInjectedAfter = errors.New("injected store failure after the write")
)

func (f *flakyStore) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	n := f.calls.Add(1)
	fail := f.failEvery > 0 && n%int64(f.failEvery) == 0
	if fail && n%int64(2*f.failEvery) == 0 {
		f.failures.Add(1)
		f.before.Add(1)
		return nil, errInjected // before the write
	}
	outs, err := f.Store.Apply(ctx, table, muts)
	if err != nil {
		// A real failure (a database restarting, a timeout) is ambiguous:
		// the write may have committed although the client saw an error.
		f.mu.Lock()
		for _, m := range muts {
			f.record(f.maybe, m)
		}
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Lock()
	for i, o := range outs {
		if !o.Applied {
			continue
		}
		f.record(f.stored, muts[i])
	}
	f.mu.Unlock()
	if fail {
		f.failures.Add(1)
		f.after.Add(1)
		return nil, errInjectedAfter
	}
	return outs, nil
}

// check is the Stored oracle: the store applied exactly this version with
// this op and value.
func (f *flakyStore) check(e *intent.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.stored[string(e.Key)][e.Version]
	if !ok {
		s, ok = f.maybe[string(e.Key)][e.Version]
	}
	switch {
	case !ok:
		return errors.New("the store never held this version")
	case s.deleted != (e.Op == intent.Delete) || (!s.deleted && s.value != string(e.Value)):
		return fmt.Errorf("event value %q, the store had deleted=%v %q%s", e.Value, s.deleted, s.value, f.writtenWith(e))
	}
	return nil
}

// writtenWith says with which versions the store was given e's value for
// e's key (a row mixed from two writes shows the other one's), for check's
// message; the caller holds f.mu.
func (f *flakyStore) writtenWith(e *intent.Event) string {
	if e.Op == intent.Delete {
		return ""
	}
	var vs []string
	for what, m := range map[string]map[string]map[uint64]storedRow{"applied": f.stored, "outcome unknown": f.maybe} {
		for v, s := range m[string(e.Key)] {
			if !s.deleted && s.value == string(e.Value) {
				vs = append(vs, fmt.Sprintf("%d (%s)", v, what))
			}
		}
	}
	if len(vs) == 0 {
		return "; the store was never given the event's value for this key"
	}
	sort.Strings(vs)
	return "; the event's value was written with version " + strings.Join(vs, ", ")
}

func (f *flakyStore) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.stored)+len(f.maybe))
	for k := range f.stored {
		out = append(out, k)
	}
	for k := range f.maybe {
		if f.stored[k] == nil {
			out = append(out, k)
		}
	}
	return out
}

// frozenLog drops offset commits while frozen: a resolver stopped then
// behaves as one that crashed after publishing but before committing, so
// its successor re-reads intents that were already resolved.
type frozenLog struct {
	intentlog.Log
	frozen atomic.Bool
	// refused counts commits refused while frozen: each one moved the
	// committed offset past intents already resolved, so a successor
	// re-reads them.
	refused atomic.Int64
}

// Unhang forwards to a log whose transactions can hang (Kafka): the bus
// finds it through this wrapper.
func (f *frozenLog) Unhang(ctx context.Context, topic string, partition int32, from, end int64) (*intentlog.Hanging, error) {
	u, ok := f.Log.(interface {
		Unhang(ctx context.Context, topic string, partition int32, from, end int64) (*intentlog.Hanging, error)
	})
	if !ok {
		return nil, nil
	}
	return u.Unhang(ctx, topic, partition, from, end)
}

// StableEnd forwards to a log with stable offsets (Kafka), for the bus's
// hang checks.
func (f *frozenLog) StableEnd(ctx context.Context, topic string, partition int32) (stable, end int64, err error) {
	s, ok := f.Log.(interface {
		StableEnd(ctx context.Context, topic string, partition int32) (stable, end int64, err error)
	})
	if !ok {
		_, end, err := f.Bounds(ctx, topic, partition)
		return end, end, err
	}
	return s.StableEnd(ctx, topic, partition)
}

func (f *frozenLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if f.frozen.Load() {
		f.refused.Add(1)
		return errors.New("commits frozen (simulated crash)")
	}
	return f.Log.Commit(ctx, group, topic, offsets)
}
