package sink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSinkRedriveNotSupersededByTheSameVersion: a letter is superseded
// only by a newer version of its key after it on the bus: the same
// version again (the bus is at least once: a republished event) says no
// more than the letter, so the letter is sent, not settled SUPERSEDED by
// itself.
func TestSinkRedriveNotSupersededByTheSameVersion(t *testing.T) {
	s := newRefusingSink(t, 1, "dup", func(key string) bool { return key == "dup" })
	m, ep, ctx := s.m, s.ep, context.Background()
	s.f.publish(event("dup", 1), event("dup", 1))
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letters", time.Minute, func() bool { ls = letters(t, m, "dup"); return len(ls) == 2 })
	s.failing.Store(false)
	var res []*wailv1.DeadLetterResolution
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		res, err = resolutions(m.Redrive(ctx, testTable, "dup", dlq.Selection{Offsets: []int64{ls[0].Offset}}))
		return !errors.Is(err, ErrNotRunning)
	})
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || res[0].RedriveVersion != 1 {
		t.Fatalf("redrive of dup@1 with dup@1 again after it: %v, %v; want REDRIVEN", res, err)
	}
	if n := received(ep, "dup", 1); n != 1 {
		t.Fatalf("dup@1 received %d times, want once", n)
	}
}

// TestSinkRedriveTwiceAtOnceSuperseded: two redrives of a superseded
// letter at once (both read it unsettled, then waited for the partition)
// both answer its one SUPERSEDED resolution: the second finds it settled
// under the lock as the first would have, which is no race lost.
func TestSinkRedriveTwiceAtOnceSuperseded(t *testing.T) {
	s := newRefusingSink(t, 1, "twice", func(key string) bool { return key == "k" })
	m, ctx := s.m, context.Background()
	s.f.publish(event("k", 1))
	waitFor(t, "the dead letter", time.Minute, func() bool { return len(letters(t, m, "twice")) == 1 })
	s.failing.Store(false)
	s.f.publish(event("k", 2))
	var r *runner
	waitFor(t, "the sink to deliver k@2", time.Minute, func() bool {
		var err error
		r, err = m.runner(&wailv1.Sink{Table: testTable, Name: "twice"})
		return err == nil && r.owns(0) && received(s.ep, "k", 2) == 1
	})
	// Both redrives wait for the partition, held here, once they read
	// the letter unsettled.
	unlock, err := r.lockPartition(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	locks, both := 0, make(chan struct{})
	beforeLock = func() {
		mu.Lock()
		defer mu.Unlock()
		if locks++; locks == 2 {
			close(both)
		}
	}
	defer func() { beforeLock = func() {} }()
	type answer struct {
		res []*wailv1.DeadLetterResolution
		err error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			res, err := resolutions(m.Redrive(ctx, testTable, "twice", dlq.Selection{All: true}))
			answers <- answer{res, err}
		}()
	}
	<-both
	time.Sleep(20 * time.Millisecond) // both past beforeLock, on the lock
	unlock()
	a, b := <-answers, <-answers
	if a.err != nil || b.err != nil || len(a.res) != 1 || len(b.res) != 1 ||
		a.res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED || !proto.Equal(a.res[0], b.res[0]) {
		t.Fatalf("two redrives of a superseded letter at once: %v, %v and %v, %v; want both its one SUPERSEDED resolution", a.res, a.err, b.res, b.err)
	}
	if n := received(s.ep, "k", 1); n != 0 {
		t.Fatalf("k@1 received %d times after k@2, want never", n)
	}
}

// TestSinkRedriveElsewhereSettlesNothing: a process that does not deliver
// the letter's partition now leaves it alone, a superseded one too: it
// neither claims nor settles it (the process that delivers the partition
// acts on its letters, ErrNotRunning says so).
func TestSinkRedriveElsewhereSettlesNothing(t *testing.T) {
	s := newRefusingSink(t, 1, "e", func(key string) bool { return key == "k" })
	m, ctx := s.m, context.Background()
	s.f.publish(event("k", 1))
	waitFor(t, "the dead letter", time.Minute, func() bool { return len(letters(t, m, "e")) == 1 })
	s.failing.Store(false)
	s.f.publish(event("k", 2))
	var r *runner
	waitFor(t, "the sink to deliver k@2", time.Minute, func() bool {
		var err error
		r, err = m.runner(&wailv1.Sink{Table: testTable, Name: "e"})
		return err == nil && r.owns(0) && received(s.ep, "k", 2) == 1
	})
	r.pmu.Lock()
	sess := r.sess
	r.pmu.Unlock()
	r.granted(sess, group.Message{Revoked: []int32{0}}) // as when another process takes it
	res, err := resolutions(m.Redrive(ctx, testTable, "e", dlq.Selection{All: true}))
	if !errors.Is(err, ErrNotRunning) || len(res) != 0 {
		t.Fatalf("redrive of a partition delivered elsewhere: %v, %v; want nothing settled and ErrNotRunning", res, err)
	}
	if ls := letters(t, m, "e"); len(ls) != 1 {
		t.Fatalf("%d letters unsettled, want the one left alone", len(ls))
	}
	q := m.queue(testTable, "e")
	if c, err := q.Claim(ctx, dlq.Claim{ID: "probe", Epoch: 1, Holder: "the test"}, []int64{0}, time.Now()); err != nil || len(c.Held) != 0 || len(c.Settled) != 0 {
		t.Fatalf("the letter after the redrive elsewhere: %+v, %v; want neither held nor settled", c, err)
	}
}
