package dlq

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestRedriveAllBounded: `redrive --all` answers at most Selection.Limit
// resolutions (the first ones) and counts all of them (Total); every
// letter is settled all the same. Before, it kept one resolution per
// letter in memory and answered them all in one response: millions of
// letters passed the client's message limit (and the server's memory).
func TestRedriveAllBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		limit     int
		want      int
		letters   int
		unsettled int
	}{
		{"under the limit", 10, 5, 5, 0},
		{"at the limit", 5, 5, 5, 0},
		{"over the limit", 2, 2, 5, 0},
		{"zero: the default", 0, 5, 5, 0},
		{"over the maximum: the maximum", MaxLimit + 1, 5, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := newTable(t)
			ctx := t.Context()
			var ls []*wailv1.DeadLetter
			for i := range tc.letters {
				k := fmt.Sprintf("k%d", i)
				tb.state(t, k, uint64(50+i), 30)
				ls = append(ls, letter(k, 0))
			}
			tb.resolved(t)
			offs := appendLetters(t, tb.log, ls...)
			got, err := tb.q.Redrive(ctx, Selection{All: true, Limit: tc.limit}, tb.o, tb.t)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Resolutions) != tc.want || got.Total != int64(tc.letters) {
				t.Fatalf("%d resolutions, total %d; want %d, total %d", len(got.Resolutions), got.Total, tc.want, tc.letters)
			}
			for i, r := range got.Resolutions {
				if r.Offset != offs[i] {
					t.Fatalf("resolution %d settles %d, want the first letters in order (%d)", i, r.Offset, offs[i])
				}
			}
			if left, _, _ := tb.q.List(ctx, ListOptions{After: -1}); len(left) != tc.unsettled {
				t.Fatalf("unsettled %v", offsetsOf(left))
			}
		})
	}
}

// TestRedriveUnreadableBounded: the letters left unsettled are counted
// and named in the error up to a bound (the drop command too), not one
// name (and key) per letter of an `--all` over millions.
func TestRedriveUnreadableBounded(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.o.Store = badKeyStore{tb.store}
	n := maxNamed + 5
	ls := make([]*wailv1.DeadLetter, n)
	for i := range ls {
		ls[i] = letter("bad", 0)
	}
	tb.resolved(t)
	offs := appendLetters(t, tb.log, ls...)
	_, err := tb.q.Redrive(ctx, Selection{All: true}, tb.o, tb.t)
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), fmt.Sprintf("%d letters were not redriven", n)) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	i := strings.Index(msg, "`wail dlq drop t ")
	if i < 0 {
		t.Fatalf("err = %v: no drop command", err)
	}
	cmd := msg[i+1:]
	cmd = cmd[:strings.IndexByte(cmd, '`')]
	want := "wail dlq drop t"
	for _, off := range offs[:maxNamed] {
		want += fmt.Sprintf(" %d", off)
	}
	if cmd != want {
		t.Fatalf("drop command %q, want the first %d offsets: %q", cmd, maxNamed, want)
	}
}
