package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestBreaker steps one replica's breaker through reads: "S" a read that
// stalled, "A" one that answered, "U" one that says nothing, "O" one still out, "w" waiting
// out the backoff; each read is first admitted (Err), and want says, per
// step, whether it was let through ("+") or bypassed ("-").
func TestBreaker(t *testing.T) {
	cases := []struct {
		name, steps, want string
	}{
		{"stalls below the threshold keep it closed", "SSASS", "+++++"},
		{"the threshold opens it", "SSSAA", "+++--"},
		{"after the backoff one read probes, and its answer closes it", "SSSwAA", "+++ ++"},
		{"a probe that stalls opens it again", "SSSwSA", "+++ +-"},
		{"for twice as long", "SSSwSwAwA", "+++ + - +"},
		{"up to MaxBackoff", "SSSwSwSwwSwwwA", "+++ + -  +   +"},
		{"a probe whose caller gave up lets the next read probe", "SSSwUA", "+++ ++"},
		{"while a probe is out other reads are bypassed", "SSSwOA", "+++ +-"},
		{"never opens with Failures < 0", "SSSSSS", "++++++"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rs Replicas
			failures := 3
			if c.name == "never opens with Failures < 0" {
				failures = -1
			}
			rs.SetBreaker(Breaker{Failures: failures, Backoff: time.Second, MaxBackoff: 2 * time.Second})
			now := time.Unix(1000, 0)
			rs.clock = func() time.Time { return now }
			rs.Add("replica-0", "h:1")
			var got []byte
			for _, step := range c.steps {
				if step == 'w' {
					now = now.Add(time.Second)
					got = append(got, ' ')
					continue
				}
				read, err := rs.Admit(0)
				if err != nil {
					var by *Bypassed
					if !errors.As(err, &by) || !errors.Is(err, store.ErrUnavailable) {
						t.Fatalf("Err: %v, want *Bypassed, store.ErrUnavailable", err)
					}
					got = append(got, '-')
					continue
				}
				got = append(got, '+')
				switch step {
				case 'S':
					read.Done(Stalled, errors.New("timeout"))
				case 'A':
					read.Done(Answered, nil)
				case 'U':
					read.Done(Unknown, nil)
				case 'O': // out: no outcome yet
				}
			}
			if string(got) != c.want {
				t.Errorf("steps %s: admitted %q, want %q", c.steps, got, c.want)
			}
		})
	}
}

func TestReadOutcome(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	late, cancelLate := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelLate()
	unavail := fmt.Errorf("%w: i/o timeout", store.ErrUnavailable)
	sqlErr := errors.New("syntax error")
	cases := []struct {
		name            string
		ctx             context.Context
		err, classified error
		race            bool
		want            Outcome
	}{
		{"answered", live, nil, nil, false, Answered},
		{"an SQL error is an answer", live, sqlErr, sqlErr, false, Answered},
		{"a timeout or lost connection stalls", live, unavail, unavail, false, Stalled},
		{"a lock race is an answer", live, unavail, unavail, true, Answered},
		{"the caller canceled: nothing", gone, unavail, unavail, false, Unknown},
		{"the caller's deadline ended it: stalled", late, context.DeadlineExceeded, context.DeadlineExceeded, false, Stalled},
		{"refused: nothing", live, &NotOurs{}, &NotOurs{}, false, Unknown},
		{"closed: nothing", live, store.ErrClosed, store.ErrClosed, false, Unknown},
	}
	for _, c := range cases {
		if got := ReadOutcome(c.ctx, c.err, c.classified, c.race); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestBreakerCounts(t *testing.T) {
	var rs Replicas
	rs.Add("replica-0", "h:1")
	rs.Add("replica-1", "h:2")
	for range DefaultBreakerFailures {
		read, err := rs.Admit(1)
		if err != nil {
			t.Fatal(err)
		}
		read.Done(Stalled, errors.New("timeout"))
	}
	_, _ = rs.Admit(1)
	_, _ = rs.Admit(1)
	if n, reads := rs.Bypassed(); n != 1 || reads != 2 {
		t.Errorf("Bypassed() = %d, %d; want 1, 2", n, reads)
	}
	if _, err := rs.Admit(0); err != nil {
		t.Errorf("replica-0: %v, want nil (its breaker is its own)", err)
	}
	if errs := rs.BypassedNow(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "replica-1 (h:2) does not answer (timeout)") {
		t.Errorf("BypassedNow() = %v, want replica-1's", errs)
	}
	if rs.Open(0) || !rs.Open(1) {
		t.Errorf("Open(0), Open(1) = %v, %v; want false, true", rs.Open(0), rs.Open(1))
	}
	primary, err := rs.Admit(2)
	if err != nil {
		t.Fatalf("the primary's level: %v", err)
	}
	if opened, closed := primary.Done(Stalled, nil); opened || closed {
		t.Error("Done at the primary's level changed something")
	}
}

// TestBreakerLateRead: reads let through while the breaker was closed and
// finishing only once it is open, its probe out, are not the probe: a
// late stall must not stand for the probe's (which would double the
// backoff once more than the probes that stalled), a late read that says
// nothing must not let a second probe out, and the probe's own outcome
// still counts.
func TestBreakerLateRead(t *testing.T) {
	cases := []struct {
		name string
		late Outcome // what the late read reports while the probe is out
		// after it, and past any backoff: is a new read bypassed (the
		// probe still out), and the probe then stalls: how long until the
		// next probe
		wantBypassed bool
		wantBackoff  time.Duration
	}{
		{"a late stall", Stalled, true, 2 * time.Second},
		{"a late read that says nothing", Unknown, true, 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rs Replicas
			rs.SetBreaker(Breaker{Failures: 3, Backoff: time.Second, MaxBackoff: 8 * time.Second})
			now := time.Unix(1000, 0)
			rs.clock = func() time.Time { return now }
			rs.Add("replica-0", "h:1")
			reads := make([]Read, 4) // four reads out at once
			for i := range reads {
				var err error
				if reads[i], err = rs.Admit(0); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range reads[:3] { // three stall: open
				r.Done(Stalled, errors.New("timeout"))
			}
			now = now.Add(time.Second)
			probe, err := rs.Admit(0)
			if err != nil {
				t.Fatalf("probe: %v", err)
			}
			reads[3].Done(c.late, errors.New("late timeout"))
			now = now.Add(2 * time.Second) // the probe is slow
			if _, err := rs.Admit(0); (err != nil) != c.wantBypassed {
				t.Errorf("a read after the late one: %v, want bypassed %v (one probe at a time)", err, c.wantBypassed)
			}
			probe.Done(Stalled, errors.New("probe timeout"))
			errs := rs.BypassedNow()
			if len(errs) != 1 {
				t.Fatalf("BypassedNow() = %v, want the replica's", errs)
			}
			var by *Bypassed
			if !errors.As(errs[0], &by) {
				t.Fatalf("%v: not *Bypassed", errs[0])
			}
			if got := by.Until.Sub(now); got != c.wantBackoff {
				t.Errorf("after the probe stalled the next probe is in %v, want %v (doubled once, by the probe)", got, c.wantBackoff)
			}
		})
	}
}

// TestBreakerProbeInParts: a probe read in parts (a multi-get's chunks)
// reports each part; its stall doubles the backoff once.
func TestBreakerProbeInParts(t *testing.T) {
	var rs Replicas
	rs.SetBreaker(Breaker{Failures: 1, Backoff: time.Second, MaxBackoff: 8 * time.Second})
	now := time.Unix(1000, 0)
	rs.clock = func() time.Time { return now }
	rs.Add("replica-0", "h:1")
	first, _ := rs.Admit(0)
	first.Done(Stalled, errors.New("timeout"))
	now = now.Add(time.Second)
	probe, err := rs.Admit(0)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	probe.Done(Stalled, errors.New("chunk 1 timeout"))
	probe.Done(Stalled, errors.New("chunk 2 timeout"))
	now = now.Add(2 * time.Second)
	if _, err := rs.Admit(0); err != nil {
		t.Errorf("2s after the probe stalled: %v, want the next probe (backoff doubled once)", err)
	}
}
