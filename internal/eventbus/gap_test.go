package eventbus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSubscribeRetentionGap: a subscriber whose position retention
// removed is told in-band, with the exact range it lost: a message of its
// own (gap and the cursor past it) before the events that follow, in
// batches too; one that asked to fail instead (fail_on_gap) gets
// out_of_range naming the partition and offsets, with the range as a
// detail, and nothing past the gap. Retention strikes before the stream
// starts (a cursor or offset below the log's start) or while it reads.
func TestSubscribeRetentionGap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		from string
		// retainFirst removes offsets [0, retainFirst) before the call;
		// retainOnRead removes [0, retainOnRead) once the stream's first
		// reader opened.
		retainFirst, retainOnRead int64
		batch                     int32
		untilEnd                  bool
		gap                       *wailv1.RetentionGap // nil: none
		first                     int64                // offset of the first event after it (-1: none, until end)
	}{
		{name: "while reading", from: "beginning", retainOnRead: 4, gap: &wailv1.RetentionGap{Partition: 0, From: 0, To: 4}, first: 4},
		{name: "while reading, batched", from: "beginning", retainOnRead: 4, batch: 10, gap: &wailv1.RetentionGap{Partition: 0, From: 0, To: 4}, first: 4},
		{name: "offset below the start", from: "@1", retainFirst: 3, gap: &wailv1.RetentionGap{Partition: 0, From: 1, To: 3}, first: 3},
		{name: "until end past the end", from: "beginning", retainOnRead: 6, untilEnd: true, gap: &wailv1.RetentionGap{Partition: 0, From: 0, To: 6}, first: -1},
		{name: "beginning asks for what is left", from: "beginning", retainFirst: 2, first: 2},
		{name: "at the start", from: "@2", retainFirst: 2, first: 2},
	} {
		for _, fail := range []bool{false, true} {
			name := tc.name
			if fail {
				name += ", fail_on_gap"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				st := newStreams(t, 1, Limits{})
				reg := prometheus.NewRegistry()
				st.svc.WithRetentionGaps(group.NewRetentionGaps(reg))
				upserts(t, st.bus, 1, 2, 3, 4, 5, 6) // offsets 0..5
				if tc.retainFirst > 0 {
					st.log.retain(Topic("t"), 0, tc.retainFirst)
				}
				if tc.retainOnRead > 0 {
					st.log.mu.Lock()
					st.log.onNewReader = func() { st.log.retain(Topic("t"), 0, tc.retainOnRead) }
					st.log.mu.Unlock()
				}
				req := &wailv1.SubscribeRequest{Table: "t", From: tc.from, MaxBatchEvents: tc.batch, UntilEnd: tc.untilEnd, FailOnGap: fail}
				var gaps []*wailv1.SubscribeResponse
				first := int64(-1)
				s, err := st.c.Subscribe(st.ctx, connect.NewRequest(req))
				if err != nil && !fail {
					t.Fatal(err)
				}
				if err == nil {
					defer s.Close()
				}
				for err == nil && first < 0 && s.Receive() {
					m := s.Msg()
					switch {
					case m.Gap != nil:
						if m.Event != nil || len(m.Events) > 0 {
							t.Errorf("the gap came with events: %v", m)
						}
						gaps = append(gaps, m)
					case m.Event != nil:
						first = m.Offset
					case len(m.Events) > 0:
						first = m.Events[0].Offset
					}
				}
				if err == nil {
					err = s.Err()
				}
				if (tc.gap == nil || !fail) && first != tc.first {
					t.Fatalf("first event at %d, want %d (stream: %v)", first, tc.first, err)
				}
				switch {
				case tc.gap == nil:
					if len(gaps) > 0 {
						t.Errorf("no position was lost, yet the stream reported %v", gaps)
					}
				case fail:
					if first >= 0 || len(gaps) > 0 || connect.CodeOf(err) != connect.CodeOutOfRange {
						t.Fatalf("fail_on_gap: event at %d, gaps %v, stream ended with %v; want out_of_range and nothing past the gap", first, gaps, err)
					}
					for _, want := range []string{"partition 0", fmt.Sprintf("offsets [%d, %d)", tc.gap.From, tc.gap.To), "log.event_retention", `"beginning"`} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("fail_on_gap error %q does not say %q", err, want)
						}
					}
					var ce *connect.Error
					if !errors.As(err, &ce) || !hasGapDetail(ce, tc.gap) {
						t.Errorf("fail_on_gap error carries no RetentionGap detail %v: %v", tc.gap, err)
					}
				default:
					if len(gaps) != 1 || !proto.Equal(gaps[0].Gap, tc.gap) {
						t.Fatalf("gaps reported: %v; want exactly %v", gaps, tc.gap)
					}
					// Its cursor resumes past the gap: from it, nothing is lost.
					if gaps[0].Cursor == "" {
						t.Fatalf("the gap message carries no cursor")
					}
					if tc.untilEnd {
						break
					}
					s2, err := st.c.Subscribe(st.ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: gaps[0].Cursor, FailOnGap: true}))
					if err != nil {
						t.Fatal(err)
					}
					defer s2.Close()
					if got := receive(t, s2, 1)[0]; got.Offset != tc.first {
						t.Errorf("from the gap's cursor: first event at %d, want %d", got.Offset, tc.first)
					}
				}
				// Every gap met is counted, skipped or failed on, with its offsets.
				var wantGaps, wantSkipped float64
				if tc.gap != nil {
					wantGaps, wantSkipped = 1, float64(tc.gap.To-tc.gap.From)
				}
				if g, o := gapCounts(t, reg); g != wantGaps || o != wantSkipped {
					t.Errorf("wail_stream_retention_gaps_total %v, skipped offsets %v; want %v and %v", g, o, wantGaps, wantSkipped)
				}
			})
		}
	}
}

// gapCounts returns the retention gaps and their offsets counted in reg
// of table t's Subscribe streams.
func gapCounts(t *testing.T, reg *prometheus.Registry) (gaps, skipped float64) {
	t.Helper()
	return counterValue(t, reg, "wail_stream_retention_gaps_total", "t", ""), counterValue(t, reg, "wail_stream_retention_skipped_offsets_total", "t", "")
}

// counterValue is the value of counter name{table, group} in reg (0: none).
func counterValue(t *testing.T, reg *prometheus.Registry, name, table, grp string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["table"] == table && labels["group"] == grp {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasGapDetail(ce *connect.Error, want *wailv1.RetentionGap) bool {
	for _, d := range ce.Details() {
		v, err := d.Value()
		if g, ok := v.(*wailv1.RetentionGap); err == nil && ok && proto.Equal(g, want) {
			return true
		}
	}
	return false
}
