package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// errInjected is the failure a faults injects.
var errInjected = errors.New("injected failure")

// faults counts the I/O steps of a run (log, bus and store calls) and
// fails the one numbered at (1 is the first; 0: none), or with act set
// runs act before it instead. An append that fails with landed set lands
// first (a Kafka append whose answer was lost).
type faults struct {
	mu     sync.Mutex
	n, at  int
	landed bool
	hit    bool
	act    func()
}

func (f *faults) step() bool {
	f.mu.Lock()
	f.n++
	now := f.n == f.at
	f.hit = f.hit || now
	f.mu.Unlock()
	if now && f.act != nil {
		f.act()
		return false
	}
	return now
}

type faultLog struct {
	*hookLog
	f *faults
}

func (l faultLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	if l.f.step() {
		return 0, 0, errInjected
	}
	return l.hookLog.Bounds(ctx, topic, p)
}

func (l faultLog) Committed(ctx context.Context, g, topic string) (map[int32]int64, error) {
	if l.f.step() {
		return nil, errInjected
	}
	return l.hookLog.Committed(ctx, g, topic)
}

func (l faultLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	if l.f.step() {
		return nil, errInjected
	}
	rd, err := l.hookLog.NewReader(topic, p, offset)
	return faultReader{Reader: rd, f: l.f}, err
}

func (l faultLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !l.f.step() {
		return l.hookLog.Append(ctx, topic, recs)
	}
	if l.f.landed {
		if err := l.hookLog.Append(ctx, topic, recs); err != nil {
			return err
		}
	}
	return errInjected
}

type faultReader struct {
	intentlog.Reader
	f *faults
}

func (r faultReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if r.f.step() {
		return nil, errInjected
	}
	return r.Reader.Next(ctx)
}

type faultStore struct {
	store.Store
	f *faults
}

func (s faultStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	if s.f.step() {
		return store.Row{}, false, fmt.Errorf("%w: %w", store.ErrUnavailable, errInjected)
	}
	return s.Store.Get(ctx, table, key, level)
}

func (s faultStore) ScanKeys(ctx context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	if s.f.step() {
		return nil, fmt.Errorf("%w: %w", store.ErrUnavailable, errInjected)
	}
	return s.Store.(store.Scanner).ScanKeys(ctx, table, after, limit)
}

// resolve is a resolver's rule, for the tests: every intent logged since
// the committed offset reads its key and publishes the state read if it is
// above the key's last event and the intent's floor; then it commits.
func (r *rig) resolve() {
	r.t.Helper()
	ctx := r.t.Context()
	committed, err := r.log.Log.Committed(ctx, group, intent.Topic("t"))
	if err != nil {
		r.t.Fatal(err)
	}
	offs := map[int32]int64{}
	for p := range r.table.Partitions {
		recs, end := r.records(intent.Topic("t"), p, committed[p])
		for _, rec := range recs {
			in, err := intent.UnmarshalIntent(rec.Value)
			if err != nil {
				r.t.Fatal(err)
			}
			ret, err := r.bus.LastVersionsOf(ctx, "t", p, 0, nil)
			if err != nil {
				r.t.Fatal(err)
			}
			row, ok, err := r.store.Get(ctx, "t", in.Key, 0)
			if err != nil {
				r.t.Fatal(err)
			}
			if ok && row.Version > max(ret.Last[string(in.Key)], in.PublishedFloor) {
				op := intent.Upsert
				if row.Deleted {
					op = intent.Delete
				}
				e := intent.Event{Table: "t", Key: in.Key, Op: op, Version: row.Version, Value: row.Value}
				if err := r.bus.Publish(ctx, "t", []intent.Event{e}); err != nil {
					r.t.Fatal(err)
				}
			}
		}
		offs[p] = end
	}
	if err := r.log.Log.Commit(ctx, group, intent.Topic("t"), offs); err != nil {
		r.t.Fatal(err)
	}
}

// events returns the versions of every event on the bus, per key, in bus
// order.
func (r *rig) events() map[string][]uint64 {
	r.t.Helper()
	out := map[string][]uint64{}
	for p := range r.table.Partitions {
		recs, _ := r.records(eventbus.Topic("t"), p, 0)
		for i := range recs {
			if e, ok, err := eventbus.Decode(&recs[i]); err == nil && ok {
				out[string(e.Key)] = append(out[string(e.Key)], e.Version)
			}
		}
	}
	return out
}

// TestRunAgainAfterFailure: a run that stops at any of its steps (an
// error injected at the Nth log, bus or store call; an append that landed
// although it failed), then the resolver, then a second run and the
// resolver again leave the bus with each key's stored state as its last
// event (invariant 4), per key versions strictly increasing (invariant 3)
// and only versions the store held (invariant 2). Pins the claim of
// DESIGN.md that a reconcile stopped midway is harmless to run again.
func TestRunAgainAfterFailure(t *testing.T) {
	t.Parallel()
	for _, landed := range []bool{false, true} {
		for at := 1; ; at++ {
			r := newRig(t, 2)
			stored := map[string][]uint64{}
			write := func(k string, v uint64, del bool) {
				r.write(k, v, del)
				stored[k] = append(stored[k], v)
			}
			write("current", 10, false)
			r.publish("current", 10)
			stored["behind"] = []uint64{15} // as if written and published before
			r.publish("behind", 15)
			write("behind", 20, false)
			write("lost", 30, false)
			write("gone", 35, false)
			r.publish("gone", 35)
			write("gone", 40, true)
			for i := range 5 {
				write(fmt.Sprintf("k%d", i), uint64(50+i), false)
			}
			r.resolveAll()

			f := &faults{at: at, landed: landed}
			o := r.opts()
			fl := faultLog{hookLog: r.log, f: f}
			o.Log, o.Bus, o.Store = fl, eventbus.New(fl), faultStore{Store: r.store, f: f}
			_, err := Run(t.Context(), o, r.table, nil)
			if f.hit != (err != nil) || (err != nil && !errors.Is(err, errInjected)) {
				t.Fatalf("landed %v, step %d: err = %v, injected %v", landed, at, err, f.hit)
			}
			r.resolve()
			if _, err := Run(t.Context(), r.opts(), r.table, nil); err != nil {
				t.Fatalf("landed %v, step %d: the second run: %v", landed, at, err)
			}
			r.resolve()

			evs := r.events()
			for k, vs := range stored {
				last := vs[len(vs)-1]
				got := evs[k]
				if len(got) == 0 || got[len(got)-1] != last {
					t.Errorf("landed %v, step %d: key %s: events %v, want the last at %d", landed, at, k, got, last)
				}
				for i := 1; i < len(got); i++ {
					if got[i] <= got[i-1] {
						t.Errorf("landed %v, step %d: key %s: events %v do not increase", landed, at, k, got)
					}
				}
				for _, v := range got {
					found := false
					for _, s := range vs {
						found = found || s == v
					}
					if !found {
						t.Errorf("landed %v, step %d: key %s: event %d of a version never stored (%v)", landed, at, k, v, vs)
					}
				}
			}
			if !f.hit {
				if at < 10 {
					t.Fatalf("only %d steps", at)
				}
				break // every step failed once
			}
		}
	}
}
