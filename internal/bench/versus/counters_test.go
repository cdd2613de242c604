package versus

import (
	"strings"
	"testing"
)

func TestParseCounters(t *testing.T) {
	const text = `# HELP wail_resolver_reads_total Store reads by table and read level.
# TYPE wail_resolver_reads_total counter
wail_resolver_reads_total{level="0",table="a"} 100
wail_resolver_reads_total{level="1",table="a"} 30
wail_resolver_reads_total{level="0",table="b"} 20
wail_resolver_escalations_total{table="a"} 30
wail_resolver_events_total{table="a"} 60
wail_resolver_events_total{table="b"} 20 1700000000000
wail_store_replica_waits_total 110
wail_store_replica_stale_reads_total 4
wail_resolver_reads_totally{level="0"} 999
bad{ 1
wail_resolver_events_total{table="c"} NaNx
`
	got, err := parseCounters(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{ctrReads0: 120, ctrReadsAll: 150, ctrEscalations: 30, ctrEvents: 80, ctrWaits: 110, ctrStale: 4}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	d := diffCounters(map[string]float64{ctrReads0: 20, ctrEvents: 30}, got)
	rpe, esc := readStats(d)
	if d[ctrReads0] != 100 || rpe != 150.0/50 || esc != 30.0/100 {
		t.Errorf("diff %v: reads/event %v, escalation rate %v", d, rpe, esc)
	}
	if rpe, esc := readStats(map[string]float64{}); rpe != 0 || esc != 0 {
		t.Errorf("no reads: %v %v", rpe, esc)
	}
	if diffCounters(nil, got) != nil {
		t.Error("a step without a scrape at its start has no counters")
	}
}

func TestWriteReads(t *testing.T) {
	var b strings.Builder
	writeReads(&b, &Result{Pipelines: []PipelineResult{{Name: "debezium", Steps: []StepResult{{TargetRate: 1000}}}}})
	if b.Len() != 0 {
		t.Fatalf("no counters, yet a table: %q", b.String())
	}
	c := map[string]float64{ctrWaits: 900, ctrStale: 3}
	writeReads(&b, &Result{Pipelines: []PipelineResult{{Name: "wail", Steps: []StepResult{
		{TargetRate: 1000, Counters: c, ReadsPerEvent: 1.25, EscalationRate: 0.04}}}}})
	if !strings.Contains(b.String(), "| wail | 1000 | 1.25 | 4% | 900 | 3 |") {
		t.Errorf("table:\n%s", b.String())
	}
}
