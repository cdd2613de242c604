package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// stuckAppend is a log whose appends never return until their context
// ends (a Kafka append whose broker does not answer).
type stuckAppend struct {
	*hookLog
	appends int
}

func (l *stuckAppend) Append(ctx context.Context, _ string, _ []*intentlog.Record) error {
	l.appends++
	<-ctx.Done()
	return ctx.Err()
}

// TestSlowAppend: the append of a batch's intents is bounded by a quarter
// of the dedupe horizon, whatever the caller's deadline (10 s here): an
// intent that lands later may find the resolver having forgotten events
// it relies on.
func TestSlowAppend(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	r.write("behind", 20, false)
	r.publish("behind", 15)
	o := r.opts()
	log := &stuckAppend{hookLog: r.log}
	o.Log, o.Horizon = log, 2*time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	began := time.Now()
	_, err := Run(ctx, o, r.table, nil)
	if !errors.Is(err, ErrSlowLog) || !errors.Is(err, context.DeadlineExceeded) || log.appends != 1 {
		t.Fatalf("err = %v after %d appends, want ErrSlowLog after one", err, log.appends)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the append gave up after %s, want about 500ms (a quarter of the horizon)", took)
	}
}

// badKeys fails every read of the keys named (a row that does not
// decode), and reads the others from the rig's store.
type badKeys struct {
	*pebble.Store
	bad map[string]bool
	err error
}

func (s badKeys) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	if s.bad[string(key)] {
		return store.Row{}, false, s.err
	}
	return s.Store.Get(ctx, table, key, level)
}

// TestRunUnreadable: a key the store fails to read does not stop a table
// reconcile: the other keys are decided and their intents logged, and the
// run then fails with ErrUnreadable naming the key, what to run, and what
// was done. Before, the read's error failed the whole run (a redrive
// already went on past such a key). A store that is unavailable still
// fails the run.
func TestRunUnreadable(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2)
	r.write("bad", 10, false)
	r.write("behind", 20, false)
	r.publish("behind", 15)
	r.write("lost", 30, false)
	r.write("current", 40, false)
	r.publish("current", 40)
	r.resolveAll()
	o := r.opts()
	o.Store = badKeys{Store: r.store, bad: map[string]bool{"bad": true}, err: errors.New("row does not decode")}
	rep, err := Run(t.Context(), o, r.table, nil)
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "row does not decode") ||
		!strings.Contains(err.Error(), `"bad"`) || !strings.Contains(err.Error(), "wail table reconcile t") ||
		!strings.Contains(err.Error(), "The other 3 keys were reconciled (2 behind: intents logged unless a dry run; 0 in flight; 0 expired)") {
		t.Fatalf("err = %v, want ErrUnreadable naming the key, its error, what was done and the command", err)
	}
	bad := intentlog.Partition([]byte("bad"), 2)
	if rep.Scanned != 4 || rep.Behind != 2 || rep.Unreadable != 1 || len(rep.UnreadableKeys) != 1 ||
		string(rep.UnreadableKeys[0].Key) != "bad" || !rep.UnreadableIn[bad] || len(rep.UnreadableIn) != 1 {
		t.Fatalf("report %+v", rep)
	}
	got := r.intents()
	if len(got) != 2 || len(got["behind"]) != 1 || len(got["lost"]) != 1 {
		t.Fatalf("intents %v, want those of behind and lost", got)
	}

	// Unavailable: the store's outage, not the key's.
	o.Store = badKeys{Store: r.store, bad: map[string]bool{"bad": true}, err: fmt.Errorf("timeout: %w", store.ErrUnavailable)}
	r.resolveAll()
	if _, err := Run(t.Context(), o, r.table, nil); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrUnreadable) {
		t.Fatalf("err = %v, want the store's ErrUnavailable", err)
	}
}

// TestStoreGoneMidRun: a store that fails every read because the table was
// dropped (ErrUnknownTable) or the store closed (the server shutting down)
// after the scan fails the run (and a redrive's Keys) with that error: it
// is the store's condition, not each key's. Before, each key was reported
// unreadable and the run failed with ErrUnreadable (`unavailable`, "retry
// once the store reads them"), for a table that no longer exists.
func TestStoreGoneMidRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		gone func(r *rig)
		want error
	}{
		{"dropped", func(r *rig) {
			if err := r.store.DropTable(context.Background(), "t"); err != nil {
				t.Error(err)
			}
		}, store.ErrUnknownTable},
		{"closed", func(r *rig) {
			if err := r.store.Close(); err != nil {
				t.Error(err)
			}
		}, store.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, keys := range []bool{false, true} {
				r := newRig(t, 1)
				r.write("behind", 20, false)
				r.publish("behind", 15)
				r.write("lost", 30, false)
				r.resolveAll()
				r.log.onCommitted = func() { tc.gone(r) } // after the scan, at the fence
				var err error
				if keys {
					_, err = Keys(t.Context(), r.opts(), r.table, [][]byte{[]byte("behind"), []byte("lost")})
				} else {
					_, err = Run(t.Context(), r.opts(), r.table, nil)
				}
				if !errors.Is(err, tc.want) || errors.Is(err, ErrUnreadable) {
					t.Errorf("keys %v: err = %v, want %v, not ErrUnreadable", keys, err, tc.want)
				}
				if got := r.intents(); len(got) != 0 {
					t.Errorf("keys %v: intents %v logged", keys, got)
				}
			}
		})
	}
}
