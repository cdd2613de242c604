// Package proxytest is the world under a proxy for tests: an intent log
// and a store in memory that record what the proxy did to them (the
// intents logged, ABORTs included, the rows stored, the order of the
// calls) and fail, stall or overrun deadlines as a test says. The proxy's
// own tests and the API's ProducerService tests run a real proxy.Proxy on
// it (proxy.New(w.Log(), w.Store(), tables, ...)).
package proxytest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// World records the order of calls across its log and store. Hold Mu to
// read or change its fields while a proxy runs on it.
type World struct {
	Mu      sync.Mutex
	Calls   []string // "append:UPSERT", "apply", "append-failed", ...
	Intents []intent.Intent
	Rows    map[string]store.Row
	// LogFails fails every Append (with LogErr, default "log down");
	// AbortFails only ABORT ones.
	LogFails, AbortFails bool
	LogErr               error
	StErr                error         // what Apply fails with, nil: it works
	LogDelay             time.Duration // each Append takes this long, then takes the intents whatever the deadline
	LogBlock             bool          // Append waits until its ctx ends (a broker that does not answer)
	// the deadlines of the last Append and Apply (zero: none)
	AppendDeadline, ApplyDeadline time.Time
	Levels                        []string // the store's read levels (nil: one, "local")
	GetErr                        error    // what Get fails with
	GotLevel                      store.Level
	OnApply                       func()           // called as Apply begins
	ApplyHonoursCtx               bool             // Apply fails once its ctx ended
	Applied                       []store.Mutation // every mutation Apply stored
}

// Log is the world's intent log (the proxy's only use of a log: Append).
type Log struct{ W *World }

// Store is the world's store: last writer wins on version.
type Store struct{ W *World }

// Log returns the world's intent log.
func (w *World) Log() Log { return Log{w} }

// Store returns the world's store.
func (w *World) Store() Store { return Store{w} }

// Row returns the row stored for key.
func (w *World) Row(key string) store.Row {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	return w.Rows[key]
}

// IntentCount is how many intents were logged.
func (w *World) IntentCount() int {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	return len(w.Intents)
}

// Append logs intents (see World for how it fails).
func (l Log) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	w := l.W
	if err := ctx.Err(); err != nil {
		w.Mu.Lock()
		defer w.Mu.Unlock()
		w.Calls = append(w.Calls, "append-canceled")
		return err
	}
	if w.LogDelay > 0 {
		time.Sleep(w.LogDelay)
	}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.AppendDeadline, _ = ctx.Deadline()
	if w.LogBlock {
		w.Mu.Unlock()
		<-ctx.Done()
		w.Mu.Lock()
		w.Calls = append(w.Calls, "append-cut-off")
		return ctx.Err()
	}
	if w.LogFails || (w.AbortFails && isAbort(recs)) {
		w.Calls = append(w.Calls, "append-failed")
		if w.LogErr != nil {
			return w.LogErr
		}
		return errors.New("log down")
	}
	for _, r := range recs {
		in, err := intent.UnmarshalIntent(r.Value)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.Key, in.Key) || topic != intent.Topic(in.Table) {
			return errors.New("record key or topic does not match the intent")
		}
		w.Intents = append(w.Intents, in)
		w.Calls = append(w.Calls, "append:"+in.Op.String())
	}
	return nil
}

// isAbort says whether recs are ABORT intents.
func isAbort(recs []*intentlog.Record) bool {
	in, err := intent.UnmarshalIntent(recs[0].Value)
	return err == nil && in.Op == intent.Abort
}

// Apply writes the mutations whose versions are above their keys' (see
// World for how it fails).
func (s Store) Apply(ctx context.Context, _ string, muts []store.Mutation) ([]store.Outcome, error) {
	w := s.W
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.ApplyDeadline, _ = ctx.Deadline()
	if w.OnApply != nil {
		w.OnApply()
	}
	if err := ctx.Err(); err != nil && w.ApplyHonoursCtx {
		w.Calls = append(w.Calls, "apply-canceled")
		return nil, err
	}
	if w.StErr != nil {
		w.Calls = append(w.Calls, "apply-failed")
		return nil, w.StErr
	}
	if w.Rows == nil {
		w.Rows = map[string]store.Row{}
	}
	outs := make([]store.Outcome, len(muts))
	for i, m := range muts {
		cur := w.Rows[string(m.Key)]
		if m.Version > cur.Version {
			w.Rows[string(m.Key)] = store.Row{Value: m.Value, Version: m.Version, Deleted: m.Delete, SchemaID: m.SchemaID}
			w.Applied = append(w.Applied, m)
			outs[i] = store.Outcome{Applied: true, Current: m.Version}
		} else {
			outs[i] = store.Outcome{Current: cur.Version}
		}
		w.Calls = append(w.Calls, "apply")
	}
	return outs, nil
}

// Get reads a row (see World for how it fails).
func (s Store) Get(_ context.Context, _ string, key []byte, level store.Level) (store.Row, bool, error) {
	w := s.W
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.GotLevel = level
	if w.GetErr != nil {
		return store.Row{}, false, w.GetErr
	}
	r, ok := w.Rows[string(key)]
	return r, ok, nil
}

// Levels are World.Levels, or one, "local".
func (s Store) Levels() []string {
	if s.W.Levels == nil {
		return []string{"local"}
	}
	return s.W.Levels
}

// Tables is a catalog of tables by name.
type Tables map[string]catalog.Table

// Get returns a table.
func (t Tables) Get(name string) (catalog.Table, bool) { v, ok := t[name]; return v, ok }

// TxAndInd are the tables tx (transactional) and ind (independent), one
// partition each, with the visibility window window.
func TxAndInd(window time.Duration) Tables {
	return Tables{
		"tx":  {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: window},
		"ind": {Name: "ind", FailureMode: catalog.Independent, Partitions: 1, VisibilityWindow: window},
	}
}
