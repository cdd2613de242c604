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
				err := rs.Err(0)
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
					rs.Done(0, Stalled, errors.New("timeout"))
				case 'A':
					rs.Done(0, Answered, nil)
				case 'U':
					rs.Done(0, Unknown, nil)
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
		if err := rs.Err(1); err != nil {
			t.Fatal(err)
		}
		rs.Done(1, Stalled, errors.New("timeout"))
	}
	_ = rs.Err(1)
	_ = rs.Err(1)
	if n, reads := rs.Bypassed(); n != 1 || reads != 2 {
		t.Errorf("Bypassed() = %d, %d; want 1, 2", n, reads)
	}
	if err := rs.Err(0); err != nil {
		t.Errorf("replica-0: %v, want nil (its breaker is its own)", err)
	}
	if errs := rs.BypassedNow(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "replica-1 (h:2) does not answer (timeout)") {
		t.Errorf("BypassedNow() = %v, want replica-1's", errs)
	}
	if rs.Open(0) || !rs.Open(1) {
		t.Errorf("Open(0), Open(1) = %v, %v; want false, true", rs.Open(0), rs.Open(1))
	}
	if opened, closed := rs.Done(2, Stalled, nil); opened || closed {
		t.Error("Done at the primary's level changed something")
	}
}
