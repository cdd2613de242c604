package versus

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/latency"
)

// TestConsumerMatching drives the shared consumer code with both decoders:
// writes are delivered by the first event of their key at or above their
// token; duplicates and older events are counted and match nothing.
func TestConsumerMatching(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	type write struct {
		key   string
		token uint64
		at    time.Duration // intended, after t0
	}
	type rec struct {
		key   string
		token uint64
		at    time.Duration // arrival, after t0
		del   bool
	}
	tests := []struct {
		name      string
		wail      bool // else Debezium
		writes    []write
		recs      []rec
		wantLat   []time.Duration // sorted e2e latencies recorded
		wantPend  int
		wantDups  int64
		wantOlder int64
	}{
		{
			name: "wail: one event covers two writes of a key (coalescing)", wail: true,
			writes:  []write{{"a", 10, 0}, {"a", 11, 5 * time.Millisecond}, {"b", 12, 0}},
			recs:    []rec{{"a", 11, 40 * time.Millisecond, false}, {"b", 12, 30 * time.Millisecond, true}},
			wantLat: []time.Duration{30 * time.Millisecond, 35 * time.Millisecond, 40 * time.Millisecond},
		},
		{
			name: "wail: an event below the write does not cover it", wail: true,
			writes: []write{{"a", 20, 0}}, recs: []rec{{"a", 19, 10 * time.Millisecond, false}}, wantPend: 1,
		},
		{
			name: "wail: duplicate event counted once, matches nothing more", wail: true,
			writes:  []write{{"a", 5, 0}, {"a", 6, time.Millisecond}},
			recs:    []rec{{"a", 5, 10 * time.Millisecond, false}, {"a", 5, 20 * time.Millisecond, false}},
			wantLat: []time.Duration{10 * time.Millisecond}, wantPend: 1, wantDups: 1,
		},
		{
			name:    "debezium: every write its own event, by transaction id",
			writes:  []write{{"a", 100, 0}, {"b", 100, 0}, {"a", 101, 2 * time.Millisecond}},
			recs:    []rec{{"a", 100, 8 * time.Millisecond, false}, {"b", 100, 9 * time.Millisecond, true}, {"a", 101, 12 * time.Millisecond, false}},
			wantLat: []time.Duration{8 * time.Millisecond, 9 * time.Millisecond, 10 * time.Millisecond},
		},
		{
			name:    "debezium: an older transaction after a newer one is counted",
			writes:  []write{{"a", 200, 0}},
			recs:    []rec{{"a", 201, 5 * time.Millisecond, false}, {"a", 200, 6 * time.Millisecond, false}},
			wantLat: []time.Duration{5 * time.Millisecond}, wantOlder: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := latency.NewMatcher(time.Minute, 1000)
			decode := DecodeDebezium
			if tc.wail {
				decode = DecodeWail
			}
			c := &consumer{decode: decode, matcher: m, table: "t", recent: map[string][]uint64{}}
			for _, w := range tc.writes {
				m.Acked("t", []byte(w.key), w.token, t0.Add(w.at), true)
			}
			for _, r := range tc.recs {
				k, v, hs := encodeFor(t, tc.wail, r.key, r.token, r.del)
				c.handle(k, v, hs, t0.Add(r.at))
			}
			if got := m.Pending(); got != tc.wantPend {
				t.Errorf("pending %d, want %d", got, tc.wantPend)
			}
			if c.dups.Load() != tc.wantDups || c.outOfOrder.Load() != tc.wantOlder {
				t.Errorf("duplicates %d older %d, want %d %d", c.dups.Load(), c.outOfOrder.Load(), tc.wantDups, tc.wantOlder)
			}
			total := m.Total()
			if total.Count != int64(len(tc.wantLat)) {
				t.Fatalf("%d latencies, want %d", total.Count, len(tc.wantLat))
			}
			if n := len(tc.wantLat); n > 0 {
				lo, hi := float64(slices.Min(tc.wantLat))/1e6, float64(slices.Max(tc.wantLat))/1e6
				if total.P50 < lo*0.99 || total.Max > hi*1.01 {
					t.Fatalf("latencies p50 %.3f max %.3f ms, want within [%.3f, %.3f]", total.P50, total.Max, lo, hi)
				}
			}
		})
	}
}

// encodeFor makes the record a pipeline would publish for key at token.
func encodeFor(t *testing.T, wail bool, key string, token uint64, del bool) ([]byte, []byte, []kgo.RecordHeader) {
	t.Helper()
	if wail {
		op := intent.Upsert
		var v []byte
		if del {
			op = intent.Delete
		} else {
			v = valueWithID(token, 16)
		}
		return wailRecord(t, intent.Event{Table: "t", Key: []byte(key), Op: op, Version: token, Value: v})
	}
	row := `{"k":"` + key + `","v":"AAAAAAAAAAE="}`
	if del {
		return []byte(key), []byte(dbzJSON("d", row, "null", strconv.FormatUint(token, 10))), nil
	}
	return []byte(key), []byte(dbzJSON("u", "null", row, strconv.FormatUint(token, 10))), nil
}

func TestPlanBatch(t *testing.T) {
	t.Parallel()
	up := func(k string) *wailv1.Mutation { return &wailv1.Mutation{Key: []byte(k), Op: wailv1.Op_OP_UPSERT} }
	del := func(k string) *wailv1.Mutation { return &wailv1.Mutation{Key: []byte(k), Op: wailv1.Op_OP_DELETE} }
	tests := []struct {
		name     string
		muts     []*wailv1.Mutation
		wantKeys []string
		wantOps  []wailv1.Op
	}{
		{name: "sorted, one per key", muts: []*wailv1.Mutation{up("c"), del("a"), up("b")},
			wantKeys: []string{"a", "b", "c"}, wantOps: []wailv1.Op{wailv1.Op_OP_DELETE, wailv1.Op_OP_UPSERT, wailv1.Op_OP_UPSERT}},
		{name: "the last write of a key wins", muts: []*wailv1.Mutation{up("a"), up("b"), del("a")},
			wantKeys: []string{"a", "b"}, wantOps: []wailv1.Op{wailv1.Op_OP_DELETE, wailv1.Op_OP_UPSERT}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := planBatch(tc.muts)
			if !slices.Equal(p.keys, tc.wantKeys) {
				t.Fatalf("keys %v, want %v", p.keys, tc.wantKeys)
			}
			for i, m := range p.muts {
				if m.GetOp() != tc.wantOps[i] || p.final[string(m.GetKey())] != i {
					t.Fatalf("plan %d: %v, want op %v", i, m, tc.wantOps[i])
				}
			}
		})
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	ok := StepResult{TargetRate: 1000, WritesPerSec: 995, E2E: latency.Percentiles{Count: 10, P99: 200}}
	tests := []struct {
		name string
		mod  func(*StepResult)
		want bool
	}{
		{"sustainable", func(*StepResult) {}, true},
		{"p99 above the bound", func(s *StepResult) { s.E2E.P99 = 1500 }, false},
		{"lag growing", func(s *StepResult) { s.LagGrowing = true }, false},
		{"unmatched", func(s *StepResult) { s.Unmatched = 1 }, false},
		{"errors", func(s *StepResult) { s.Errors = 3 }, false},
		{"too few writes", func(s *StepResult) { s.WritesPerSec = 800 }, false},
		{"nothing measured", func(s *StepResult) { s.E2E = latency.Percentiles{} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := ok
			tc.mod(&st)
			judge(&st, time.Second, false)
			if st.Sustainable != tc.want {
				t.Fatalf("sustainable %v (%s), want %v", st.Sustainable, st.Verdict, tc.want)
			}
		})
	}
}
