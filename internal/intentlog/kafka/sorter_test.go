package kafka

import (
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

func TestSorter(t *testing.T) {
	t.Parallel()
	const hang = 9
	rec := func(off int64) intentlog.Record { return intentlog.Record{Offset: off, Key: []byte{byte('a' + off)}} }
	data := func(off, pid int64) fetched { return fetched{pid: pid, txn: true, rec: rec(off)} }
	plain := func(off int64) fetched { return fetched{pid: -1, rec: rec(off)} }
	marker := func(off, pid int64, commit bool) fetched {
		return fetched{pid: pid, control: true, txn: true, commit: commit, rec: rec(off)}
	}
	tests := []struct {
		name               string
		in                 []fetched
		inFlight           bool
		committed, hanging string
	}{
		{
			name:      "committed, aborted, plain and hanging",
			in:        []fetched{data(0, 1), data(1, hang), data(2, 2), marker(3, 1, true), marker(4, 2, false), plain(5)},
			committed: "af", hanging: "b",
		},
		{name: "a hang its producer ended after all", in: []fetched{data(0, hang), marker(1, hang, true)}, committed: "a"},
		{name: "a hang its producer aborted after all", in: []fetched{data(0, hang), marker(1, hang, false)}},
		{name: "in flight", in: []fetched{data(0, hang), data(1, 4)}, inFlight: true},
		{name: "a record read twice counts once", in: []fetched{plain(0), plain(0)}, committed: "a"},
		{name: "committed in offset order", in: []fetched{data(0, 1), plain(1), marker(2, 1, true)}, committed: "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := sorter{hangs: map[int64]openTxn{hang: {pid: hang}}, open: map[int64][]intentlog.Record{}}
			for _, f := range tc.in {
				s.take(f)
			}
			if got := s.inFlight(); got != tc.inFlight {
				t.Fatalf("inFlight = %v, want %v", got, tc.inFlight)
			}
			if tc.inFlight {
				return
			}
			h := s.result()
			if got := keysOf(h.Committed); got != tc.committed {
				t.Errorf("committed = %q, want %q", got, tc.committed)
			}
			if got := keysOf(h.Records); got != tc.hanging {
				t.Errorf("hanging = %q, want %q", got, tc.hanging)
			}
		})
	}
}

func keysOf(recs []intentlog.Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.Key)
	}
	return b.String()
}
