package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/store"
)

// world is the intent log and the store under a real proxy.Proxy, so
// that ProducerService's tests see what its writes did: the intents
// logged (ABORTs included) and the rows stored. (The proxy's own tests
// have a fuller one; this is what the handlers' tests need.)
type world struct {
	mu       sync.Mutex
	calls    []string
	intents  []intent.Intent
	rows     map[string]store.Row
	stErr    error         // what Apply fails with, nil: it works
	logDelay time.Duration // each Append takes this long
	levels   []string      // the store's read levels (nil: one, "local")
	getErr   error         // what Get fails with
	gotLevel store.Level
	// applyHonoursCtx: Apply fails once its ctx ended
	applyHonoursCtx bool
}

type fakeLog struct{ w *world }

func (l fakeLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.w.logDelay > 0 {
		time.Sleep(l.w.logDelay)
	}
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	for _, r := range recs {
		in, err := intent.UnmarshalIntent(r.Value)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.Key, in.Key) || topic != intent.Topic(in.Table) {
			return errors.New("record key or topic does not match the intent")
		}
		l.w.intents = append(l.w.intents, in)
		l.w.calls = append(l.w.calls, "append:"+in.Op.String())
	}
	return nil
}

type fakeStore struct{ w *world }

func (s fakeStore) Apply(ctx context.Context, _ string, muts []store.Mutation) ([]store.Outcome, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if err := ctx.Err(); err != nil && s.w.applyHonoursCtx {
		s.w.calls = append(s.w.calls, "apply-canceled")
		return nil, err
	}
	if s.w.stErr != nil {
		s.w.calls = append(s.w.calls, "apply-failed")
		return nil, s.w.stErr
	}
	outs := make([]store.Outcome, len(muts))
	for i, m := range muts {
		cur := s.w.rows[string(m.Key)]
		if m.Version > cur.Version {
			s.w.rows[string(m.Key)] = store.Row{Value: m.Value, Version: m.Version, Deleted: m.Delete}
			outs[i] = store.Outcome{Applied: true, Current: m.Version}
		} else {
			outs[i] = store.Outcome{Current: cur.Version}
		}
		s.w.calls = append(s.w.calls, "apply")
	}
	return outs, nil
}

func (s fakeStore) Get(_ context.Context, _ string, key []byte, level store.Level) (store.Row, bool, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.gotLevel = level
	if s.w.getErr != nil {
		return store.Row{}, false, s.w.getErr
	}
	r, ok := s.w.rows[string(key)]
	return r, ok, nil
}

func (s fakeStore) Levels() []string {
	if s.w.levels == nil {
		return []string{"local"}
	}
	return s.w.levels
}

func (w *world) row(key string) store.Row {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows[key]
}

func (w *world) intentCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.intents)
}

type tables map[string]catalog.Table

func (t tables) Get(name string) (catalog.Table, bool) { v, ok := t[name]; return v, ok }

// worldProxy is a proxy on w with the tables tbs and limits.
func worldProxy(t *testing.T, w *world, tbs tables, limits proxy.Limits) *proxy.Proxy {
	t.Helper()
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.rows = map[string]store.Row{}
	return proxy.New(fakeLog{w}, fakeStore{w}, tbs, clock, limits, nil)
}

// newProxy is a proxy whose tables tx (transactional) and ind
// (independent) have a visibility window of a second.
func newProxy(t *testing.T, w *world) *proxy.Proxy {
	t.Helper()
	return worldProxy(t, w, tables{
		"tx":  {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Second},
		"ind": {Name: "ind", FailureMode: catalog.Independent, Partitions: 1, VisibilityWindow: time.Second},
	}, proxy.Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10})
}

var (
	errStoreDown  = errors.New("store down")                           // outcome unknown
	errNotApplied = fmt.Errorf("%w: rolled back", store.ErrNotApplied) // definite
)

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
