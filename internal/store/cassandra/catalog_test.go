package cassandra

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

// injectedTimeout is what a coordinator answers when a lightweight
// transaction's Paxos round does not finish in time: the outcome is
// unknown (it may still have been accepted).
var injectedTimeout = requestErr{code: gocql.ErrCodeWriteTimeout, msg: "Operation timed out - received only 0 responses (injected)"}

func specOf(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// entryOf reads a catalog entry through a store's swap (old and new nil).
func entryOf(t *testing.T, s *Store, name string) string {
	t.Helper()
	cur, _, err := s.SwapTable(t.Context(), name, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(cur)
}

func createEntry(t *testing.T, s *Store, name, spec string) {
	t.Helper()
	if _, ok, err := s.SwapTable(t.Context(), name, nil, []byte(spec)); err != nil || !ok {
		t.Fatalf("creating %s: swapped=%v err=%v", name, ok, err)
	}
}

// TestSwapAmbiguousAttempt: a catalog swap whose first lightweight
// transaction times out (applied or not: the answer is lost) and whose
// entry another process swaps before the retry answers exactly whether it
// was made. Taking "not applied" for an attempt that applied and was
// overwritten made callers edit again (an increment counted twice: the
// storetest CatalogEntry case), and retrying an attempt that applied over
// an entry swapped back to the old value made it twice (the other
// process's edit lost).
func TestSwapAmbiguousAttempt(t *testing.T) {
	opts := testOptions(t)
	s, other := openTest(t, opts), openTest(t, opts)
	cases := []struct {
		name          string
		start         string    // the entry before (empty: absent)
		old, new      string    // our swap
		applies       bool      // our first attempt reaches the cluster (and applies) before it times out
		between       [2]string // the other process's swap, after our first attempt and before its answer
		swapped       bool
		cur           string // what our swap reports when it did not swap
		final         string
		wantFirstTime bool // our swap answers after one attempt (the read back settles it)
	}{
		{"update_applied_then_overwritten", "1", "1", "2", true, [2]string{"2", "3"}, true, "", "3", true},
		{"update_lost_then_other", "1", "1", "2", false, [2]string{"1", "5"}, false, "5", "5", true},
		{"update_lost_then_nothing", "1", "1", "2", false, [2]string{"", ""}, true, "", "2", false},
		{"create_applied_then_overwritten", "", "", "a", true, [2]string{"a", "b"}, true, "", "b", true},
		{"create_lost_then_other", "", "", "a", false, [2]string{"", "z"}, false, "z", "z", true},
		{"delete_applied_then_recreated", "1", "1", "", true, [2]string{"", "c"}, true, "", "c", true},
		{"delete_lost_then_other_deleted", "1", "1", "", false, [2]string{"1", ""}, false, "", "", true},
		{"applied_then_swapped_back", "A", "A", "B", true, [2]string{"B", "A"}, true, "", "A", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			name := "_amb_" + tc.name
			if tc.start != "" {
				createEntry(t, other, name, tc.start)
			}
			attempts, between := 0, 0
			s.fault = func(op string, run func() error) error {
				if op != "swap" {
					return run()
				}
				attempts++
				if attempts > 1 {
					return run()
				}
				if tc.applies {
					if err := run(); err != nil {
						return err
					}
				}
				if tc.between != [2]string{} {
					// The other process's swap must find what ours left:
					// that proves our first attempt applied (or did not).
					if _, ok, err := other.SwapTable(ctx, name, specOf(tc.between[0]), specOf(tc.between[1])); err != nil || !ok {
						t.Errorf("the other process's swap %q -> %q: swapped=%v err=%v", tc.between[0], tc.between[1], ok, err)
					} else {
						between++
					}
				}
				return injectedTimeout
			}
			defer func() { s.fault = nil }()
			cur, ok, err := s.SwapTable(ctx, name, specOf(tc.old), specOf(tc.new))
			if err != nil {
				t.Fatalf("swap: %v", err)
			}
			if ok != tc.swapped || (!ok && string(cur) != tc.cur) {
				t.Errorf("swap %q -> %q: swapped=%v current=%q; want swapped=%v current=%q", tc.old, tc.new, ok, cur, tc.swapped, tc.cur)
			}
			if attempts == 0 || (tc.between != [2]string{}) != (between == 1) {
				t.Fatalf("the fault did not fire as planned: %d attempts, %d swaps in between", attempts, between)
			}
			if tc.wantFirstTime && attempts != 1 {
				t.Errorf("%d attempts, want 1 (the read back settles the first)", attempts)
			}
			if got := entryOf(t, other, name); got != tc.final {
				t.Errorf("the entry is %q, want %q", got, tc.final)
			}
		})
	}
}

// TestSwapTimeouts: a swap whose attempt timed out and whose read back
// fails too says the outcome is unknown (store.ErrUnavailable, not
// store.ErrNotApplied) instead of guessing (the attempt did apply); one
// whose every attempt times out, each read back finding it not applied,
// fails with store.ErrNotApplied (and store.ErrUnavailable) after
// casTries attempts, the entry as it was. One whose caller gives up
// (its context ends) during an attempt that applied says the outcome is
// unknown too.
func TestSwapTimeouts(t *testing.T) {
	s := openTest(t, testOptions(t))
	cases := []struct {
		name      string
		runs      bool // the attempts reach the cluster (and the first applies)
		readsFail bool
		cancel    bool // the caller's context ends during the first attempt
		attempts  int
		unknown   bool // else not applied
		final     string
	}{
		{"read_back_fails", true, true, false, 1, true, "2"},
		{"every_attempt_times_out", false, false, false, casTries, false, "1"},
		{"caller_gives_up", true, false, true, 1, true, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "_timeouts_" + tc.name
			createEntry(t, s, name, "1")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			attempts, reads := 0, 0
			s.fault = func(op string, run func() error) error {
				switch {
				case op == "read":
					reads++
					if tc.readsFail {
						return injectedTimeout
					}
					return run()
				case tc.runs:
					if err := run(); err != nil {
						return err
					}
				}
				attempts++
				if tc.cancel {
					cancel()
					return ctx.Err()
				}
				return injectedTimeout
			}
			_, ok, err := s.SwapTable(ctx, name, []byte("1"), []byte("2"))
			s.fault = nil
			if ok || err == nil || errors.Is(err, store.ErrUnavailable) == tc.cancel || errors.Is(err, context.Canceled) != tc.cancel ||
				errors.Is(err, store.ErrNotApplied) == tc.unknown ||
				strings.Contains(err.Error(), "outcome is unknown") != tc.unknown {
				t.Fatalf("swapped=%v err=%v; want an error, outcome unknown: %v", ok, err, tc.unknown)
			}
			if attempts != tc.attempts || (reads < 2) != tc.cancel {
				t.Fatalf("%d attempts, %d reads back; want %d attempts, reads retried (none after the caller gave up)", attempts, reads, tc.attempts)
			}
			if got := entryOf(t, s, name); got != tc.final {
				t.Fatalf("the entry is %q, want %q", got, tc.final)
			}
		})
	}
}

// TestSwapRecordWindow: the catalog remembers the last swapSlots swaps of
// an entry. An attempt that applied and was followed by swapSlots-1 other
// swaps before the read back is still known as made; after swapSlots, its
// tag may be overwritten, and the swap says the outcome is unknown
// instead of "not applied".
func TestSwapRecordWindow(t *testing.T) {
	opts := testOptions(t)
	s, other := openTest(t, opts), openTest(t, opts)
	for _, others := range []int{swapSlots - 1, swapSlots} {
		t.Run(strconv.Itoa(others), func(t *testing.T) {
			ctx := t.Context()
			name := "_window_" + strconv.Itoa(others)
			createEntry(t, s, name, "0")
			attempts, done := 0, 0
			s.fault = func(op string, run func() error) error {
				if op != "swap" {
					return run()
				}
				if attempts++; attempts > 1 {
					return run()
				}
				if err := run(); err != nil {
					return err
				}
				for i := 1; i <= others; i++ {
					if _, ok, err := other.SwapTable(ctx, name, []byte(strconv.Itoa(i)), []byte(strconv.Itoa(i+1))); err != nil || !ok {
						t.Errorf("the other process's swap %d: %v %v", i, ok, err)
						break
					}
					done++
				}
				return injectedTimeout
			}
			defer func() { s.fault = nil }()
			_, ok, err := s.SwapTable(ctx, name, []byte("0"), []byte("1"))
			if done != others {
				t.Fatalf("%d swaps in between, want %d", done, others)
			}
			switch {
			case others < swapSlots && (err != nil || !ok):
				t.Fatalf("after %d swaps in between: swapped=%v err=%v; want swapped", others, ok, err)
			case others >= swapSlots && (ok || !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotApplied) || !strings.Contains(err.Error(), "outcome is unknown")):
				t.Fatalf("after %d swaps in between: swapped=%v err=%v; want the outcome unknown", others, ok, err)
			}
			if got, want := entryOf(t, other, name), strconv.Itoa(others+1); got != want {
				t.Fatalf("the entry is %q, want %q", got, want)
			}
		})
	}
}
