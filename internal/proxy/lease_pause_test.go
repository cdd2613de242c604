package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// pausedClock is a wall clock that jumps by pause the first time it is
// read after armed: the process stopped (GC, SIGSTOP, a stalled VM)
// between a write's last admit and its stamp. validUntil is when the
// proxy id's lease stops being valid on the same clock.
type pausedClock struct {
	mu         sync.Mutex
	now        time.Time
	validUntil time.Time
	pause      time.Duration
	armed      bool
}

func (c *pausedClock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		c.armed = false
		c.now = c.now.Add(c.pause)
	}
	return c.now
}

func (c *pausedClock) admit() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.Before(c.validUntil) {
		return nil
	}
	return errors.New("proxy id 3: the lease was not renewed in time")
}

// TestPauseBetweenAdmitAndStamp: the lease must be valid when a write's
// version is read from the clock, not only before: a process paused
// between its last admit and the stamp (past its lease, while another
// process claimed the id and stamps from its own clock) wakes up with a
// wall clock that reads the new holder's times, and would stamp the
// versions the new holder stamps (same milliseconds, same proxy id, a
// logical counter that starts over): two writes with one version. The
// write is refused unwritten instead. (Admit was asked only before the
// stamp: the write was stamped after the lease lapsed, logged and
// stored.)
func TestPauseBetweenAdmitAndStamp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pause time.Duration
		ok    bool
	}{
		{name: "no pause", pause: 0, ok: true},
		{name: "paused within the lease", pause: 500 * time.Millisecond, ok: true},
		{name: "paused past the lease", pause: 20 * time.Second, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
			c := &pausedClock{now: start, validUntil: start.Add(time.Second), pause: tc.pause, armed: true}
			clock, err := hlc.New(3, c.read)
			if err != nil {
				t.Fatal(err)
			}
			w := &world{Rows: map[string]store.Row{}}
			p := New(w.Log(), w.Store(), proxytest.TxAndInd(10*time.Second), clock,
				Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil).WithAdmit(c.admit)
			r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
			if tc.ok {
				if r.Err != nil || !r.Stored {
					t.Fatalf("write: %+v; want stored", r)
				}
				return
			}
			if !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged || r.Stored {
				t.Fatalf("write stamped after the lease lapsed: %+v; want unavailable, no version", r)
			}
			if n, row := w.IntentCount(), w.Row("k"); n != 0 || row.Version != 0 {
				t.Fatalf("write stamped at %v, after the lease lapsed at %v, was logged (%d intents) or stored (row version %d)",
					hlc.Time(row.Version), c.validUntil, n, row.Version)
			}
		})
	}
}

// TestHoldSpansTheAppend: with WithHold, a write asks hold right after
// it is stamped, and ends it once its intents' append returned: the
// server gives the proxy id up at shutdown only when no stamped write's
// intent is still on its way to the log. A refusal fails the write
// unwritten.
func TestHoldSpansTheAppend(t *testing.T) {
	t.Parallel()
	for _, refuse := range []bool{false, true} {
		w := &world{Rows: map[string]store.Row{}}
		var holds, doneAfterAppend int
		p := New(w.Log(), w.Store(), proxytest.TxAndInd(10*time.Second), mustClock(t),
			Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil).
			WithAdmit(func() error { return nil }).
			WithHold(func() (func(), error) {
				if refuse {
					return nil, errors.New("proxy id 3: the lease was given up")
				}
				holds++
				if w.IntentCount() != 0 {
					t.Error("held after the append")
				}
				return func() {
					if w.IntentCount() == 1 && w.Row("k").Version == 0 {
						doneAfterAppend++
					}
				}, nil
			})
		r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
		switch {
		case refuse && (!errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || w.IntentCount() != 0):
			t.Fatalf("a write the hold refused: %+v, %d intents", r, w.IntentCount())
		case !refuse && (r.Err != nil || holds != 1 || doneAfterAppend != 1):
			t.Fatalf("write %+v: %d holds, %d ended after the append and before the store write", r, holds, doneAfterAppend)
		}
	}
}

// TestAdmitRefusesBeforeTheHold: with both set, admit is asked before a
// write is stamped and hold after; a write admit refuses is refused
// unwritten even though hold would let it through (it is never stamped,
// hold is not asked, nothing is logged or stored).
func TestAdmitRefusesBeforeTheHold(t *testing.T) {
	t.Parallel()
	w := &world{Rows: map[string]store.Row{}}
	holds := 0
	p := New(w.Log(), w.Store(), proxytest.TxAndInd(10*time.Second), mustClock(t),
		Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil).
		WithAdmit(func() error { return errors.New("wail is stopping") }).
		WithHold(func() (func(), error) { holds++; return func() {}, nil })
	r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
	if !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged || r.Stored || holds != 0 ||
		w.IntentCount() != 0 || w.Row("k").Version != 0 {
		t.Fatalf("a write admit refused: %+v, %d holds, %d intents, row %+v", r, holds, w.IntentCount(), w.Row("k"))
	}
}
