package landing

import (
	"bytes"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestPending(t *testing.T) {
	t.Parallel()
	ws := New()
	a := ws.Begin("t", 10, 20)
	b := ws.Begin("t", 15, 30) // interleaved with a
	c := ws.Begin("u", 10, 20)
	tests := []struct {
		table   string
		version uint64
		want    *Write // nil: not pending
	}{
		{"t", 9, nil},
		{"t", 10, a},
		{"t", 20, a}, // inclusive; the earliest write that holds it
		{"t", 21, b},
		{"t", 30, b},
		{"t", 31, nil},
		{"u", 15, c},
		{"v", 15, nil},
	}
	for _, tc := range tests {
		got := ws.Pending(tc.table, tc.version)
		switch {
		case tc.want == nil && got != nil:
			t.Errorf("Pending(%s, %d): a write, want nil", tc.table, tc.version)
		case tc.want != nil && got != tc.want:
			t.Errorf("Pending(%s, %d): not the write [%d, %d]", tc.table, tc.version, tc.want.lo, tc.want.hi)
		}
	}
	ch := ws.Pending("t", 17).Done()
	a.End()
	if !closed(ch) {
		t.Fatal("the channel of an ended write is open")
	}
	if got := ws.Pending("t", 17); got != b {
		t.Fatal("version 17 after a ended: want b (b's range holds it too)")
	}
	b.End()
	b.End() // idempotent
	if ws.Pending("t", 17) != nil || ws.InFlight("t") != 0 || ws.InFlight("u") != 1 {
		t.Fatalf("after a and b ended: pending %v, in flight t=%d u=%d", ws.Pending("t", 17) != nil, ws.InFlight("t"), ws.InFlight("u"))
	}
	c.End()
	if len(ws.tables) != 0 {
		t.Errorf("%d tables kept after every write ended", len(ws.tables))
	}
	// A reversed range is the same range.
	d := ws.Begin("t", 5, 1)
	if ws.Pending("t", 3) == nil {
		t.Error("Begin(5, 1) does not hold 3")
	}
	d.End()
}

func TestNil(t *testing.T) {
	t.Parallel()
	var ws *Writes
	w := ws.Begin("t", 1, 2)
	w.End()
	if ws.Pending("t", 1) != nil || ws.InFlight("t") != 0 {
		t.Fatal("a nil set holds something")
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	ws := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				v := uint64(g*1000 + i)
				w := ws.Begin("t", v, v)
				if ws.Pending("t", v) == nil {
					t.Error("a write in flight is not pending")
				}
				w.End()
			}
		})
	}
	wg.Wait()
	if ws.InFlight("t") != 0 {
		t.Fatalf("%d writes left in flight", ws.InFlight("t"))
	}
}

// TestRow: an ended write hands over, per key, the row of its newest
// mutation the store applied, as a store reads it (a tombstone has no
// value and no schema); nothing before it ended, nothing of a key it did
// not apply or does not hold, nothing when it failed (no Stored).
func TestRow(t *testing.T) {
	t.Parallel()
	ws := New()
	w := ws.Begin("t", 1, 9)
	w.Stored([]store.Mutation{
		{Key: []byte("a"), Value: []byte("a1"), Version: 1, SchemaID: 7},
		{Key: []byte("b"), Value: []byte("b2"), Version: 2},
		{Key: []byte("a"), Value: []byte("a3"), Version: 3, SchemaID: 8},
		{Key: []byte("c"), Value: []byte("c4"), Version: 4}, // superseded: not applied
		{Key: []byte("d"), Value: []byte("d5"), Version: 5, SchemaID: 9, Delete: true},
		{Key: []byte("e"), Value: []byte("e6"), Version: 6},
		{Key: []byte("e"), Value: []byte("e7"), Version: 7}, // lost to another proxy's newer version
	}, []store.Outcome{{Applied: true}, {Applied: true}, {Applied: true}, {Current: 10}, {Applied: true}, {Applied: true}, {Current: 11}})
	if _, ok := w.Row([]byte("a")); ok {
		t.Fatal("a row handed over before the write ended")
	}
	w.End()
	tests := []struct {
		key  string
		want store.Row
		ok   bool
	}{
		{"a", store.Row{Value: []byte("a3"), Version: 3, SchemaID: 8}, true}, // the newest of two applied
		{"b", store.Row{Value: []byte("b2"), Version: 2}, true},
		{"c", store.Row{}, false},
		{"d", store.Row{Version: 5, Deleted: true}, true},
		{"e", store.Row{Value: []byte("e6"), Version: 6}, true}, // the newest it applied (the store may hold newer by now)
		{"z", store.Row{}, false},
	}
	for _, tc := range tests {
		got, ok := w.Row([]byte(tc.key))
		if ok != tc.ok || got.Version != tc.want.Version || got.Deleted != tc.want.Deleted || got.SchemaID != tc.want.SchemaID ||
			!bytes.Equal(got.Value, tc.want.Value) || (got.Value == nil) != (tc.want.Value == nil) {
			t.Errorf("Row(%s) = %+v, %v; want %+v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
	// The value is a copy: an event keeps it, not the request it came in.
	if got, _ := w.Row([]byte("b")); &got.Value[0] == &w.muts[1].Value[0] {
		t.Error("the row's value aliases the mutation's (the whole request would stay alive with the event)")
	}
	failed := ws.Begin("t", 20, 20)
	failed.End()
	if _, ok := failed.Row([]byte("a")); ok {
		t.Error("a write that failed (ended without Stored) handed over a row")
	}
	short := ws.Begin("t", 30, 30)
	short.Stored([]store.Mutation{{Key: []byte("a"), Version: 30}}, nil) // not the store's answer
	short.End()
	if _, ok := short.Row([]byte("a")); ok {
		t.Error("a write told outcomes that do not match its mutations handed over a row")
	}
}
