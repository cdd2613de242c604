package sink

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSinkRedriveTakesOverAClaimOfBeforeARestart: a redrive whose
// process died between its claim and the letter's resolution leaves the
// letter claimed; the next redrive after the restart takes the claim over
// and sends it (DESIGN.md, "Claims"). The claim's epoch is the group
// epoch of the letter's partition, and an unshared group's epochs began
// at 1 again in every process: after a session had joined again (its
// dead letter not written, here), the dead process's epoch was above
// the new one's, its claim held the letter for good, and neither redrive
// nor drop could ever settle it.
//
// "clock ahead": the process that died had a clock ahead of the next
// one's (the host's clock was stepped back at its restart; the data
// directory moved to a host whose clock is behind). An unshared group's
// epochs start above the clock in microseconds when its process started:
// the dead process's epoch (here ten minutes of microseconds ahead) was
// above every epoch the next process gives until its clock caught up,
// and its claim held the letter meanwhile. One process serves an
// unshared group: a claim at an epoch it never gave is a dead process's.
func TestSinkRedriveTakesOverAClaimOfBeforeARestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ahead time.Duration // of the dead process's epoch, in microseconds
	}{{"same clock", 0}, {"clock ahead", 10 * time.Minute}} {
		t.Run(tc.name, func(t *testing.T) { redriveAfterDeadClaim(t, uint64(tc.ahead/time.Microsecond)) })
	}
}

func redriveAfterDeadClaim(t *testing.T, ahead uint64) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var fixed atomic.Bool
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if !fixed.Load() && string(b.Events[0].Key) == "poison" {
			http.Error(w, "no", http.StatusBadRequest)
			return true
		}
		return false
	}
	// The first process: its first dead letter cannot be written (the
	// session ends and joins again, under new epochs), the second is.
	log := &dlqFailLog{Log: f.log}
	log.fails.Store(1)
	open := func() *Manager {
		m := New(Options{Backend: f.cat, Log: log, Run: true, Refresh: 50 * time.Millisecond,
			Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
		m.Start(context.Background())
		return m
	}
	m1 := open()
	if _, _, err := m1.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 1, BackoffMinMs: 5, BackoffMaxMs: 20}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("poison", 1))
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letter", time.Minute, func() bool { ls = letters(t, m1, "s"); return len(ls) == 1 })
	var epoch uint64
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		r, err := m1.runner(&wailv1.Sink{Table: testTable, Name: "s"})
		if err != nil {
			return false
		}
		var ok bool
		epoch, ok = r.epoch(0)
		return ok
	})
	// Its redrive claims the letter, and the process dies before sending.
	q := m1.queue(testTable, "s")
	if got, err := q.Claim(context.Background(), dlq.Claim{ID: "died", Epoch: epoch + ahead, Holder: "the process that died"}, []int64{ls[0].Offset}, time.Now()); err != nil || len(got.Won) != 1 {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	m1.Close()

	// The next process.
	fixed.Store(true)
	m2 := open()
	defer m2.Close()
	waitFor(t, "the sink to hold its partition again", time.Minute, func() bool {
		r, err := m2.runner(&wailv1.Sink{Table: testTable, Name: "s"})
		return err == nil && r.owns(0)
	})
	res, err := resolutions(m2.Redrive(context.Background(), testTable, "s", dlq.Selection{All: true}))
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive after the restart (the dead process's epoch %d): %v, %v; want the letter REDRIVEN", epoch, res, err)
	}
	if n := received(ep, "poison", 1); n != 1 {
		t.Fatalf("the endpoint took the letter's event %d times, want once", n)
	}
}
