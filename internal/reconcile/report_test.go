package reconcile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestReportBounds: a report counts every key, lists the first
// MaxReported keys of each verdict an operator acts on, and notes the
// partitions of all of them.
func TestReportBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v     Verdict
		count func(*Report) int64
		keys  func(*Report) []Key
		in    func(*Report) map[int32]bool
	}{
		{Behind, func(r *Report) int64 { return r.Behind }, func(r *Report) []Key { return r.Keys }, nil},
		{Expired, func(r *Report) int64 { return r.Expired }, func(r *Report) []Key { return r.ExpiredKeys },
			func(r *Report) map[int32]bool { return r.ExpiredIn }},
		{Unreadable, func(r *Report) int64 { return r.Unreadable }, func(r *Report) []Key { return r.UnreadableKeys },
			func(r *Report) map[int32]bool { return r.UnreadableIn }},
	} {
		var rep Report
		const n = MaxReported + 2
		for i := range n {
			rep.add(Key{Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d", i), Verdict: tc.v})
		}
		if rep.Scanned != n || tc.count(&rep) != n || len(tc.keys(&rep)) != MaxReported || string(tc.keys(&rep)[0].Key) != "k0" {
			t.Errorf("%v: %d scanned, %d counted, %d listed; want %d, %d, the first %d", tc.v, rep.Scanned, tc.count(&rep), len(tc.keys(&rep)), n, n, MaxReported)
		}
		if tc.in != nil && len(tc.in(&rep)) != 3 {
			t.Errorf("%v: partitions %v, want 0, 1 and 2", tc.v, tc.in(&rep))
		}
	}
}

// TestUnreadableError: the error of a run that could not read some keys
// names the first ten and how many more.
func TestUnreadableError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n     int
		shown int
		more  string // "": none
	}{
		{1, 1, ""},
		{10, 10, ""},
		{11, 10, "and 1 more"},
		{MaxReported + 5, 10, fmt.Sprintf("and %d more", MaxReported-5)},
	} {
		var rep Report
		for i := range tc.n {
			rep.add(Key{Key: fmt.Appendf(nil, "k%d", i), Verdict: Unreadable, Err: errors.New("bad row")})
		}
		err := rep.unreadableError("t")
		if !errors.Is(err, ErrUnreadable) {
			t.Fatalf("%d keys: %v, want ErrUnreadable", tc.n, err)
		}
		msg := err.Error()
		shown := strings.Count(msg, "(partition 0)")
		if shown != tc.shown || strings.Contains(msg, "more") != (tc.more != "") || !strings.Contains(msg, tc.more) ||
			!strings.Contains(msg, fmt.Sprintf("failed to read %d keys", tc.n)) {
			t.Errorf("%d keys: %q; want %d named, %q", tc.n, msg, tc.shown, tc.more)
		}
	}
}
