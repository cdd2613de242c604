package versus

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/wail-cdc/wail/internal/bench"
	"github.com/wail-cdc/wail/internal/latency"
)

// Result is the whole comparison, as the JSON has it.
type Result struct {
	StartedAt  time.Time         `json:"started_at"`
	Machine    Machine           `json:"machine"`
	Workload   map[string]string `json:"workload"`
	PGSettings string            `json:"pg_settings"`
	Pipelines  []PipelineResult  `json:"pipelines"`
}

// Machine is where it ran.
type Machine struct {
	CPUs         int     `json:"cpus"`
	CPUModel     string  `json:"cpu_model"`
	MemGB        float64 `json:"mem_gb"`
	Go           string  `json:"go"`
	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end"`
}

// PipelineResult is one pipeline's ladder of steps.
type PipelineResult struct {
	Name                   string            `json:"name"`
	Settings               map[string]string `json:"settings"`
	StartupSeconds         float64           `json:"startup_seconds"`
	Steps                  []StepResult      `json:"steps"`
	MaxSustainableRate     float64           `json:"max_sustainable_rate"`
	FirstUnsustainableRate float64           `json:"first_unsustainable_rate"`
	StoppedBecause         string            `json:"stopped_because"`
	PeakHWMMB              float64           `json:"peak_hwm_mb"`
	// SharedRestarts counts restarts of PostgreSQL or Kafka seen so far
	// (by other users of the machine): a run with any is suspect.
	SharedRestarts   int    `json:"shared_restarts"`
	DecodeErrors     int64  `json:"decode_errors"`
	FirstDecodeError string `json:"first_decode_error,omitempty"`
	Error            string `json:"error,omitempty"`
	CleanupError     string `json:"cleanup_error,omitempty"`
}

// StepResult is one constant-rate step of one pipeline.
type StepResult struct {
	TargetRate   float64 `json:"target_rate"`
	Seconds      float64 `json:"seconds"`
	Acked        int64   `json:"acked"`
	WritesPerSec float64 `json:"writes_per_sec"`
	EventsPerSec float64 `json:"events_per_sec"`
	// NoEvent counts acknowledged writes that changed nothing (no event
	// due); Untracked, writes the matcher had no room for.
	NoEvent   int64               `json:"no_event"`
	Untracked int64               `json:"untracked"`
	Unmatched int64               `json:"unmatched"`
	E2E       latency.Percentiles `json:"e2e"`
	Ack       latency.Percentiles `json:"ack"`
	// Duplicates: events whose (key, token) had been seen; OutOfOrder:
	// events older than one already seen for the key.
	Duplicates   int64            `json:"duplicates"`
	OutOfOrder   int64            `json:"out_of_order"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	// MaxLag is the most writes acknowledged and not yet delivered in a
	// per-second sample of the measured period.
	MaxLag     int64   `json:"max_lag"`
	LagSlope   float64 `json:"lag_slope_per_sec"`
	LagGrowing bool    `json:"lag_growing"`
	// CPU is CPU seconds used in the measured period, per process tree.
	CPU                      map[string]float64 `json:"cpu_seconds"`
	CPUPer1kWrites           float64            `json:"cpu_per_1k_writes"`
	CPUPer1kWritesWithShared float64            `json:"cpu_per_1k_writes_with_pg_kafka"`
	RSSMB                    float64            `json:"rss_mb"`
	HWMMB                    float64            `json:"hwm_mb"`
	LoadAvg                  string             `json:"loadavg"`
	// Counters are the pipeline's own counters over the measured period
	// (wail: resolver reads, escalations, events, replica waits; see
	// counters.go); ReadsPerEvent and EscalationRate (escalations per
	// read at level 0, the replica when there is one) derive from them.
	Counters       map[string]float64 `json:"counters,omitempty"`
	ReadsPerEvent  float64            `json:"reads_per_event,omitempty"`
	EscalationRate float64            `json:"escalation_rate,omitempty"`
	Sustainable    bool               `json:"sustainable"`
	Verdict        string             `json:"verdict"`
}

func workloadReport(o *Options) map[string]string {
	l := &o.Load
	dist := l.Dist
	if dist == bench.DistZipf {
		dist = fmt.Sprintf("zipf s=%g", l.ZipfS)
	}
	return map[string]string{
		"keys": fmt.Sprintf("%d (%s), preloaded", l.Keys, dist), "mix": l.Mix.String(),
		"value_bytes": fmt.Sprint(l.ValueSize), "batch": fmt.Sprint(l.Batch), "senders": fmt.Sprint(l.Concurrency),
		"warmup": o.Warmup.String(), "step": o.StepDuration.String(), "drain": o.Drain.String(),
		"ladder":       fmt.Sprintf("from %.0f/s x%.2g, then one bisection; at most %d steps", o.StartRate, o.StepFactor, o.MaxSteps),
		"p99_bound":    o.MaxP99.String(),
		"partitions":   fmt.Sprint(o.Partitions),
		"pg_conns_dbz": fmt.Sprint(o.PGConns),
		"seed":         fmt.Sprint(l.Seed),
	}
}

func stepLine(name string, st StepResult) string {
	reads := ""
	if st.Counters != nil {
		reads = fmt.Sprintf(", reads/event %.2f, escalations %.0f%%", st.ReadsPerEvent, 100*st.EscalationRate)
		if w := st.Counters[ctrWaits]; w > 0 {
			reads += fmt.Sprintf(" (replica waits %.0f, ran out %.0f)", w, st.Counters[ctrStale])
		}
	}
	return fmt.Sprintf("%-8s %6.0f/s: %6.0f writes/s, e2e p50 %s p99 %s p99.9 %s, lag max %d, dup %d, cpu %.2fs/1k writes (+pg+kafka %.2fs), rss %.0f MB%s, load %s: %s",
		name, st.TargetRate, st.WritesPerSec, ms(st.E2E.P50), ms(st.E2E.P99), ms(st.E2E.P999), st.MaxLag, st.Duplicates,
		st.CPUPer1kWrites, st.CPUPer1kWritesWithShared, st.RSSMB, reads, st.LoadAvg, st.Verdict)
}

// ms formats milliseconds with about 2 significant digits.
func ms(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

// writeReport prints the Markdown tables of docs/benchmarks.md.
func writeReport(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n## wail vs Debezium, %s\n\n", r.StartedAt.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %.0f GiB, %s; load average %s at start, %s at end.\n", r.Machine.CPUs, r.Machine.CPUModel,
		r.Machine.MemGB, r.Machine.Go, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd)
	fmt.Fprintf(w, "PostgreSQL: %s.\n", r.PGSettings)
	fmt.Fprint(w, "Workload:")
	for _, k := range slices.Sorted(maps.Keys(r.Workload)) {
		fmt.Fprintf(w, " %s %s;", k, r.Workload[k])
	}
	fmt.Fprint(w, "\n\n| pipeline | highest sustainable rate | first unsustainable | peak RSS (VmHWM) | startup |\n|---|---|---|---|---|\n")
	for _, p := range r.Pipelines {
		fmt.Fprintf(w, "| %s | **%.0f writes/s** | %s | %.0f MB | %.0f s |\n", p.Name, p.MaxSustainableRate, rateOr(p.FirstUnsustainableRate), p.PeakHWMMB, p.StartupSeconds)
	}
	fmt.Fprint(w, "\n| pipeline | target/s | writes/s | events/s | e2e p50 | e2e p99 | e2e p99.9 | max lag | dup | CPU s/1k writes: pipeline | + PG, replica, Kafka | PG | Kafka | RSS | verdict |\n")
	fmt.Fprint(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Pipelines {
		for _, st := range p.Steps {
			k := float64(st.Acked) / 1000
			per := func(name string) string {
				if k == 0 {
					return "-"
				}
				return fmt.Sprintf("%.2f", st.CPU[name]/k)
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %s | %s | %s | %d | %d | %.2f | %.2f | %s | %s | %.0f MB | %s |\n",
				p.Name, st.TargetRate, st.WritesPerSec, st.EventsPerSec, ms(st.E2E.P50), ms(st.E2E.P99), ms(st.E2E.P999),
				st.MaxLag, st.Duplicates, st.CPUPer1kWrites, st.CPUPer1kWritesWithShared, per(procPG), per(procKafka), st.RSSMB, st.Verdict)
		}
	}
	writeReads(w, r)
	if len(r.Pipelines) == 2 {
		a, b := r.Pipelines[0], r.Pipelines[1]
		fmt.Fprintf(w, "\nAt equal target rates (%s | %s):\n\n", a.Name, b.Name)
		fmt.Fprint(w, "| target/s | writes/s | e2e p50 | e2e p99 | e2e p99.9 | CPU s/1k writes (pipeline) | peak RSS | dup |\n|---|---|---|---|---|---|---|---|\n")
		for _, pair := range byRate(a.Steps, b.Steps) {
			x, y := pair[0], pair[1]
			fmt.Fprintf(w, "| %.0f | %.0f \\| %.0f | %s \\| %s | %s \\| %s | %s \\| %s | %.2f \\| %.2f | %.0f \\| %.0f MB | %d \\| %d |\n",
				x.TargetRate, x.WritesPerSec, y.WritesPerSec, ms(x.E2E.P50), ms(y.E2E.P50), ms(x.E2E.P99), ms(y.E2E.P99),
				ms(x.E2E.P999), ms(y.E2E.P999), x.CPUPer1kWrites, y.CPUPer1kWrites, x.HWMMB, y.HWMMB, x.Duplicates, y.Duplicates)
		}
	}
	fmt.Fprintln(w)
	for _, p := range r.Pipelines {
		if p.Error != "" {
			fmt.Fprintf(w, "%s failed: %s\n", p.Name, p.Error)
		}
		if p.DecodeErrors > 0 {
			fmt.Fprintf(w, "%s: %d records could not be decoded (first: %s)\n", p.Name, p.DecodeErrors, p.FirstDecodeError)
		}
	}
}

func rateOr(r float64) string {
	if r == 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f/s", r)
}

// byRate pairs the steps of two pipelines at equal target rates.
func byRate(a, b []StepResult) [][2]*StepResult {
	idx := map[float64]*StepResult{}
	for i := range b {
		idx[b[i].TargetRate] = &b[i]
	}
	var out [][2]*StepResult
	for i := range a {
		if s, ok := idx[a[i].TargetRate]; ok {
			out = append(out, [2]*StepResult{&a[i], s})
		}
	}
	slices.SortFunc(out, func(x, y [2]*StepResult) int { return int(x[0].TargetRate - y[0].TargetRate) })
	return out
}

// writeReads prints the store reads of the steps that counted them
// (wail's resolver): reads per event, escalations per replica read.
func writeReads(w io.Writer, r *Result) {
	header := false
	for _, p := range r.Pipelines {
		for _, st := range p.Steps {
			if st.Counters == nil {
				continue
			}
			if !header {
				fmt.Fprint(w, "\n| pipeline | target/s | store reads per event | escalations per level-0 read | replica waits | waits that ran out |\n|---|---|---|---|---|---|\n")
				header = true
			}
			fmt.Fprintf(w, "| %s | %.0f | %.2f | %.0f%% | %.0f | %.0f |\n", p.Name, st.TargetRate, st.ReadsPerEvent, 100*st.EscalationRate,
				st.Counters[ctrWaits], st.Counters[ctrStale])
		}
	}
}
