package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/store"
)

// retainedFrom is the rig's log whose event partitions start at start:
// the events below it were removed by retention.
type retainedFrom struct {
	*hookLog
	start int64
}

func (l retainedFrom) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	start, end, err := l.hookLog.Bounds(ctx, topic, p)
	if topic == eventbus.Topic("t") {
		start = max(start, l.start)
	}
	return start, end, err
}

// TestRetention: a key with no event is behind when its event cannot have
// been removed by retention, and expired (left alone) when it may have
// been: written before the first event retained (with a minute's clock
// skew), before the retention period when retention emptied the
// partition, or whenever written when what was lost is unknown.
func TestRetention(t *testing.T) {
	t.Parallel()
	now := time.Now()
	keys := map[string]time.Time{
		"old":    now.Add(-2 * time.Hour),
		"recent": now.Add(-30 * time.Minute),
		"ahead":  now.Add(2 * time.Minute), // a proxy clock ahead, past the skew
		"future": now.AddDate(1, 0, 0),     // a clock a year off
	}
	tests := []struct {
		name      string
		removed   int  // events published, then removed by retention
		retained  bool // an event of another key published after them
		retention time.Duration
		want      map[string]Verdict
	}{
		{name: "nothing lost", want: map[string]Verdict{"old": Behind, "recent": Behind, "ahead": Behind, "future": Behind}},
		{name: "events retained", removed: 1, retained: true,
			want: map[string]Verdict{"old": Expired, "recent": Expired, "ahead": Behind, "future": Behind}},
		{name: "emptied, retention known", removed: 1, retention: time.Hour,
			want: map[string]Verdict{"old": Expired, "recent": Behind, "ahead": Behind, "future": Behind}},
		{name: "emptied, retention unknown", removed: 1,
			want: map[string]Verdict{"old": Expired, "recent": Expired, "ahead": Expired, "future": Expired}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, 1)
			var ks [][]byte
			for k, at := range keys {
				m := store.Mutation{Key: []byte(k), Value: []byte("v"), Version: hlc.At(at)}
				if _, err := r.store.Apply(t.Context(), "t", []store.Mutation{m}); err != nil {
					t.Fatal(err)
				}
				ks = append(ks, []byte(k))
			}
			for range tc.removed {
				r.publish("x", 1)
			}
			if tc.retained {
				r.publish("y", 2)
			}
			r.resolveAll()
			o := r.opts()
			o.Bus = eventbus.New(retainedFrom{hookLog: r.log, start: int64(tc.removed)})
			o.EventRetention = tc.retention
			o.DryRun = true
			got, err := Keys(t.Context(), o, r.table, ks)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range got {
				if want := tc.want[string(k.Key)]; k.Verdict != want {
					t.Errorf("key %s: %v, want %v", k.Key, k.Verdict, want)
				}
			}
		})
	}
}
