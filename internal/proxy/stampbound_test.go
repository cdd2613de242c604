package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// slowTopicLog delays the appends to one topic and counts each topic's
// appends.
type slowTopicLog struct {
	fakeLog
	slow    string
	delay   time.Duration
	mu      sync.Mutex
	appends map[string]int
}

func (l *slowTopicLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	l.mu.Lock()
	l.appends[topic]++
	l.mu.Unlock()
	if topic == l.slow {
		time.Sleep(l.delay)
	}
	return l.fakeLog.Append(ctx, topic, recs)
}

// slowLimit is a RecordLimiter that takes d per call (Kafka's, asking a
// slow cluster for a topic's max.message.bytes).
type slowLimit struct{ d time.Duration }

func (s slowLimit) RecordLimit(context.Context, string) (int, string, error) {
	time.Sleep(s.d)
	return 1 << 20, "test", nil
}

// TestStampBoundCountsFromTheCall: MaxStampDelay counts from the Write
// call, not only from when a write joined its table's merge queue. A
// request's tables run one after another, and its mutations are checked
// before any runs: a write that reaches its stamping past the bound that
// way (behind a slow table of its request, or slow checks) is refused
// unstamped, unlogged and unstored, as a write late in the queue is. (It
// was stamped, so a client that retried after the bound could see its
// lost attempt overwrite the retry.)
func TestStampBoundCountsFromTheCall(t *testing.T) {
	t.Parallel()
	const bound = 300 * time.Millisecond
	for _, tc := range []struct {
		name     string
		slowLog  time.Duration // appends to "slow" take this
		slowChk  time.Duration // each mutation's check takes this
		muts     []Mutation
		okTables map[string]bool // the tables whose writes go through
	}{
		{name: "behind a slow table of the request", slowLog: 3 * bound,
			muts:     []Mutation{{Table: "slow", Key: []byte("a")}, {Table: "tx", Key: []byte("b")}},
			okTables: map[string]bool{"slow": true}},
		{name: "slow checks", slowChk: bound / 3,
			muts:     []Mutation{{Table: "tx", Key: []byte("a")}, {Table: "tx", Key: []byte("b")}, {Table: "tx", Key: []byte("c")}, {Table: "tx", Key: []byte("d")}},
			okTables: map[string]bool{}},
		{name: "in time", muts: []Mutation{{Table: "slow", Key: []byte("a")}, {Table: "tx", Key: []byte("b")}},
			okTables: map[string]bool{"slow": true, "tx": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{Rows: map[string]store.Row{}}
			log := &slowTopicLog{fakeLog: w.Log(), slow: intent.Topic("slow"), delay: tc.slowLog, appends: map[string]int{}}
			clock, err := hlc.New(3, nil)
			if err != nil {
				t.Fatal(err)
			}
			window := 10 * time.Second
			tbs := tables{
				"slow": {Name: "slow", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: window},
				"tx":   {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: window},
			}
			limits := Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}
			if tc.slowChk > 0 {
				limits.Bus = slowLimit{tc.slowChk}
			}
			p := New(log, w.Store(), tbs, clock, limits, nil)
			p.stampDelay = bound
			res := p.Write(context.Background(), tc.muts)
			late := 0
			for i, m := range tc.muts {
				r := res[i]
				if tc.okTables[m.Table] {
					if r.Err != nil || !r.Stored {
						t.Fatalf("write %d (%s): %+v; want stored", i, m.Table, r)
					}
					continue
				}
				late++
				if !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged || r.Stored {
					t.Fatalf("write %d (%s): %+v; want unavailable, unstamped", i, m.Table, r)
				}
				if _, ok := w.Rows[string(m.Key)]; ok || log.appends[intent.Topic(m.Table)] != 0 {
					t.Fatalf("write %d (%s), refused, was logged or stored", i, m.Table)
				}
			}
			if got := lateWrites(t, p); (late > 0) != (got > 0) {
				t.Fatalf("wail_proxy_late_writes_total %v with %d late writes", got, late)
			}
		})
	}
}
