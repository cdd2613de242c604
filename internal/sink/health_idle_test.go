package sink

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// joinFailLog is a log whose first reads of committed offsets fail (the
// log down for a moment as the sink joins its group).
type joinFailLog struct {
	intentlog.Log
	fails atomic.Int64
}

func (l *joinFailLog) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("the log did not answer (test)")
	}
	return l.Log.Committed(ctx, group, topic)
}

// TestSinkHealthClearsOnIdleTable: a sink whose session failed (its join:
// the log did not answer) raises its condition; once it joined again the
// condition must clear, also on a table with nothing to deliver. 158b715
// cleared it at the next 2xx only: on an idle table /healthz stayed
// degraded, and describe said "retrying", until an event came.
func TestSinkHealthClearsOnIdleTable(t *testing.T) {
	f := newFixture(t, 1)
	log := &joinFailLog{Log: f.log}
	log.fails.Store(2) // the create's read of the group's positions (CreateSink's Resumed), then the join's
	ep := newEndpoint(t, "")
	reg := health.NewRegistry(nil)
	m := New(Options{Backend: f.cat, Log: log, Run: true, Refresh: 50 * time.Millisecond, Health: reg,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "idle", Url: ep.url(), Start: "beginning",
		BackoffMinMs: 5, BackoffMaxMs: 20}); err != nil {
		t.Fatal(err)
	}
	const component = "sink/" + testTable + "/idle"
	waitFor(t, "the join to fail", 10*time.Second, func() bool { return log.fails.Load() < 0 })
	waitCleared(t, reg, component, "the sink joined again, with nothing to deliver, but its condition stays raised")
	st, err := m.Describe(context.Background(), testTable, "idle")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "running" || st.LastError == "" {
		t.Errorf("state %q, last error %q: want running, the join's failure kept as the last error", st.State, st.LastError)
	}
}
