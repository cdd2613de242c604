package dlq

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/reconcile"
	"github.com/wail-cdc/wail/internal/store"
)

// expiredTable is a table whose bus lost its first event to retention, a
// key "old" stored an hour before the oldest retained event with no event
// left (reconcile's "expired": one of the lost intents may be its, and
// publishing it could repeat a version), and a key "behind" the bus.
func expiredTable(t *testing.T) *table {
	t.Helper()
	tb := newTable(t)
	ctx := t.Context()
	gone := intent.Event{Table: "t", Key: []byte("gone"), Op: intent.Upsert, Version: 7, Value: []byte("v")}
	if err := tb.bus.Publish(ctx, "t", []intent.Event{gone}); err != nil { // offset 0, "removed by retention"
		t.Fatal(err)
	}
	old := hlc.At(time.Now().Add(-2 * time.Hour))
	if _, err := tb.store.Apply(ctx, "t", []store.Mutation{{Key: []byte("old"), Value: []byte("v"), Version: old}}); err != nil {
		t.Fatal(err)
	}
	tb.state(t, "behind", 50, 30)
	tb.resolved(t)
	tb.o.Bus = eventbus.New(retainedLog{tb.log})
	tb.o.EventRetention = time.Hour
	return tb
}

// TestGapWithExpiredKeysStaysOpen: a GAP letter is settled only when every
// key of its partition is confirmed (up to date, behind and logged, or in
// flight). A key left expired may be one of the lost intents' keys, with
// no event: the letter stays open, and the reconcile (or the GAP letter's
// redrive) names the key. Before, reconcile settled the letter all the
// same, and nothing said any more that the key's write may lack its event.
func TestGapWithExpiredKeysStaysOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tests := []struct {
		name string
		run  func(tb *table, offs []int64) (rep reconcileReport, settled int, err error)
	}{
		{name: "reconcile", run: func(tb *table, _ []int64) (reconcileReport, int, error) {
			r, err := tb.q.Reconcile(ctx, tb.o, tb.t)
			return reconcileReport{r.Report.Expired, r.Report.ExpiredKeys, r.Open}, len(r.Settled), err
		}},
		{name: "redrive", run: func(tb *table, offs []int64) (reconcileReport, int, error) {
			got, err := tb.q.Redrive(ctx, Selection{Offsets: offs}, tb.o, tb.t)
			if got.Gap == nil {
				return reconcileReport{}, len(got.Resolutions), err
			}
			return reconcileReport{got.Gap.Expired, got.Gap.ExpiredKeys, nil}, len(got.Resolutions), err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := expiredTable(t)
			offs := appendLetters(t, tb.log, gap(0))
			rep, settled, err := tc.run(tb, offs)
			if tc.name == "redrive" && (!errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), `"old"`)) {
				t.Errorf("redrive: %v, want ErrExpired naming the key", err)
			}
			if tc.name == "reconcile" && err != nil {
				t.Errorf("reconcile: %v", err)
			}
			if settled != 0 {
				t.Errorf("%d letters settled, want none", settled)
			}
			if rep.expired != 1 || len(rep.keys) != 1 || string(rep.keys[0].Key) != "old" {
				t.Errorf("expired %d %+v, want the key old", rep.expired, rep.keys)
			}
			if tc.name == "reconcile" && (len(rep.open) != 1 || rep.open[0] != offs[0]) {
				t.Errorf("open GAP letters %v, want %d", rep.open, offs[0])
			}
			if left, _, _ := tb.q.List(ctx, ListOptions{After: -1}); len(left) != 1 || left[0].Offset != offs[0] {
				t.Fatalf("unsettled %v, want the GAP letter %d", offsetsOf(left), offs[0])
			}
			// Written again through wail, the key's new version is
			// published: the letter settles.
			v := hlc.At(time.Now())
			tb.state(t, "old", v, v)
			tb.resolved(t)
			if rep, settled, err := tc.run(tb, offs); err != nil || settled != 1 || rep.expired != 0 {
				t.Errorf("after the key was written again: %d settled, %d expired, %v; want the letter settled", settled, rep.expired, err)
			}
		})
	}
}

// reconcileReport is what TestGapWithExpiredKeysStaysOpen checks of a
// reconcile or a GAP letter's redrive.
type reconcileReport struct {
	expired int64
	keys    []reconcile.Key
	open    []int64
}

// TestGapSettlesDeletedKeyOnCompactedBus: on a compacted bus (Kafka) a
// key deleted in the store with no record left was counted expired and
// held the partition's GAP letter open for good (compaction removes a
// delete event and its tombstone after delete.retention.ms). No record
// at all, on a compacted topic that lost nothing to time retention, means
// the key's last record was a removed tombstone or it never had one: a
// consumer sees it deleted, as the store says, so the letter settles.
// With time retention on the bus (compact,delete) the key's only upsert
// may have been removed while its delete was never published: the letter
// stays open.
func TestGapSettlesDeletedKeyOnCompactedBus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		retained bool
		settled  int
		expired  int64
	}{
		{"compaction only", false, 1, 0},
		{"time retention too", true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			tb := newTable(t)
			if tc.retained {
				gone := intent.Event{Table: "t", Key: []byte("gone"), Op: intent.Upsert, Version: 7, Value: []byte("v")}
				if err := tb.bus.Publish(ctx, "t", []intent.Event{gone}); err != nil { // offset 0, "removed by retention"
					t.Fatal(err)
				}
				tb.o.Bus = eventbus.New(retainedLog{tb.log})
				tb.o.EventRetention = time.Hour
			}
			tb.o.Compacted = true
			deleted := hlc.At(time.Now().Add(-2 * time.Hour))
			if _, err := tb.store.Apply(ctx, "t", []store.Mutation{{Key: []byte("deleted"), Version: deleted, Delete: true}}); err != nil {
				t.Fatal(err)
			}
			tb.resolved(t)
			offs := appendLetters(t, tb.log, gap(0))
			r, err := tb.q.Reconcile(ctx, tb.o, tb.t)
			if err != nil || len(r.Settled) != tc.settled || r.Report.Expired != tc.expired {
				t.Fatalf("reconcile: %d settled, %d expired (%+v), %v; want %d settled, %d expired", len(r.Settled), r.Report.Expired, r.Report.ExpiredKeys, err, tc.settled, tc.expired)
			}
			if tc.settled == 0 && (len(r.Open) != 1 || r.Open[0] != offs[0]) {
				t.Errorf("open GAP letters %v, want %d", r.Open, offs[0])
			}
		})
	}
}
