package landing

import (
	"sync"
	"testing"
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
			t.Errorf("Pending(%s, %d): a channel, want nil", tc.table, tc.version)
		case tc.want != nil && got != (<-chan struct{})(tc.want.done):
			t.Errorf("Pending(%s, %d): not the channel of [%d, %d]", tc.table, tc.version, tc.want.lo, tc.want.hi)
		}
	}
	ch := ws.Pending("t", 17)
	a.End()
	if !closed(ch) {
		t.Fatal("the channel of an ended write is open")
	}
	if got := ws.Pending("t", 17); got != (<-chan struct{})(b.done) {
		t.Fatal("version 17 after a ended: want b's channel (b's range holds it too)")
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
