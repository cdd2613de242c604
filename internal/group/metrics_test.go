package group

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestGroupsLagMetric: wail_group_lag_offsets is the sum over partitions
// of the end offset minus the committed one (from the beginning where
// nothing is committed), it falls by what a member acknowledges, and
// wail_group_members counts the live members; a group never served here
// is not reported.
func TestGroupsLagMetric(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	g := New(l, time.Minute)
	defer g.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector())
	if lag, members, ok := groupMetrics(t, reg, "g"); ok {
		t.Fatalf("a group never joined is reported: lag %v, members %v", lag, members)
	}
	var ends int64
	for p := range tb.Partitions {
		_, end, err := l.Bounds(ctx, tb.Topic, p)
		if err != nil {
			t.Fatal(err)
		}
		ends += end
	}
	if ends == 0 {
		t.Fatal("the table has no events")
	}
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	if lag, members, ok := groupMetrics(t, reg, "g"); !ok || lag != float64(ends) || members != 1 {
		t.Fatalf("after the join: lag %v members %v (reported %v), want lag %d, 1 member", lag, members, ok, ends)
	}
	grant := next(t, a)
	var acked int64
	for len(grant.Granted) < int(tb.Partitions) {
		m := next(t, a)
		grant.Granted = append(grant.Granted, m.Granted...)
	}
	batch := next(t, a)
	if !a.Check(batch) || len(batch.Records) == 0 {
		t.Fatalf("batch %+v refused or empty", batch)
	}
	acked = batch.Records[0].Offset + 1
	if refused, err := g.Ack(ctx, tb, "g", "a", []Ack{{batch.Partition, batch.Epoch, acked}}); err != nil || len(refused) != 0 {
		t.Fatalf("ack: %v %v", refused, err)
	}
	if lag, members, ok := groupMetrics(t, reg, "g"); !ok || lag != float64(ends-acked) || members != 1 {
		t.Fatalf("after acknowledging %d: lag %v members %v (reported %v), want lag %d", acked, lag, members, ok, ends-acked)
	}
	a.Leave()
	if lag, members, ok := groupMetrics(t, reg, "g"); !ok || lag != float64(ends-acked) || members != 0 {
		t.Fatalf("after the member left: lag %v members %v (reported %v), want lag %d and 0 members", lag, members, ok, ends-acked)
	}
}

// groupMetrics gathers reg and returns group's lag and members.
func groupMetrics(t *testing.T, reg *prometheus.Registry, group string) (lag, members float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, "group", group) {
				continue
			}
			switch mf.GetName() {
			case "wail_group_lag_offsets":
				lag, ok = m.GetGauge().GetValue(), true
			case "wail_group_members":
				members = m.GetGauge().GetValue()
			}
		}
	}
	return lag, members, ok
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
