package eventbus

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/group"
)

// TestGroupResetBelowRetention: a reset to a position retention removed
// (a cursor or offset below the log's start) commits it as asked, so the
// group's member meets the gap and is told (group.Message.Gap, counted
// under the group), as when retention removes events after a reset.
// Before, the reset committed the log's start instead: the member was
// never told of the events it missed, and the gap was counted and logged
// as a Subscribe stream's (group "", "event stream: ..."), which no
// stream met.
func TestGroupResetBelowRetention(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 1, Limits{})
	reg := prometheus.NewRegistry()
	gaps := group.NewRetentionGaps(reg)
	groups := group.New(st.log, time.Minute).WithRetentionGaps(gaps)
	st.svc.WithRetentionGaps(gaps).WithGroups(groups)
	t.Cleanup(groups.Close)
	upserts(t, st.bus, 1, 2, 3, 4) // offsets 0..3
	st.log.retain(Topic("t"), 0, 2)
	parts, err := st.svc.ResetGroup(st.ctx, "t", "g", "@1")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Committed != 1 {
		t.Errorf("reset to @1 below the start 2: partitions %+v, want committed at 1", parts)
	}
	if n := counterValue(t, reg, "wail_stream_retention_gaps_total", "t", ""); n != 0 || strings.Contains(st.logs.String(), "event stream") {
		t.Errorf("the reset counted %v Subscribe stream gaps and logged %q; want none", n, st.logs.String())
	}
	sess, err := st.svc.JoinGroup(st.ctx, "t", "g", "m", "", GroupSnapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Leave()
	var got group.Message
	for got.Records == nil && got.Gap == nil {
		if got, err = sess.Next(st.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got.Gap == nil || got.Gap.From != 1 || got.Gap.To != 2 {
		t.Fatalf("first delivery: gap %v, %d records (next %d); want the gap [1, 2)", got.Gap, len(got.Records), got.Next)
	}
	if n := counterValue(t, reg, "wail_stream_retention_gaps_total", "t", "g"); n != 1 {
		t.Errorf("group g's retention gaps %v, want 1", n)
	}
}
