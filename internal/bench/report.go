package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wail-cdc/wail/internal/server"
)

// Result is everything a run measured; it is the JSON document of --json.
type Result struct {
	SchemaVersion int          `json:"schema_version"`
	StartedAt     time.Time    `json:"started_at"`
	Seconds       float64      `json:"seconds"`
	Config        ConfigReport `json:"config"`
	Backend       Backend      `json:"backend"`
	Machine       Machine      `json:"machine"`
	Steps         []Step       `json:"steps"`
	FindMax       *FindMax     `json:"find_max"` // null without --find-max
	Floor         *Floor       `json:"floor"`    // null without the floor
	Samples       []Sample     `json:"samples"`
	Interrupted   bool         `json:"interrupted"`
}

// Machine describes where the bench ran.
type Machine struct {
	CPUs        int    `json:"cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	CPUModel    string `json:"cpu_model"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	GoVersion   string `json:"go_version"`
	LoadAvgFrom string `json:"loadavg_start"` // /proc/loadavg before the run
	LoadAvgTo   string `json:"loadavg_end"`
	// GC is the bench process's collector setting: a server's defaults
	// (memory.*), unless GOGC or GOMEMLIMIT set it. It holds for the load
	// generator, the floor and an in-process server alike.
	GC server.GC `json:"gc"`
}

func newResult(o *Options) *Result {
	return &Result{
		SchemaVersion: 1, StartedAt: time.Now().UTC().Truncate(time.Second), Config: o.report(),
		Machine: Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(),
			OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(), LoadAvgFrom: loadAvg()},
		Steps: []Step{}, Samples: []Sample{},
	}
}

func (r *Result) finish(ctx context.Context) {
	r.Seconds = time.Since(r.StartedAt).Round(time.Second).Seconds()
	r.Machine.LoadAvgTo = loadAvg()
	r.Interrupted = ctx.Err() != nil
	if r.Samples == nil {
		r.Samples = []Sample{}
	}
	for i := range r.Steps {
		if r.Steps[i].ErrorsByKind == nil {
			r.Steps[i].ErrorsByKind = map[string]int64{}
		}
	}
}

// loadAvg is the first three fields of /proc/loadavg ("" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// write prints the table on o.Out, the JSON on o.JSON and the plot to
// o.PlotFile.
func (r *Result) write(o *Options) error {
	r.printTable(o.Out)
	if o.JSON != nil {
		enc := json.NewEncoder(o.JSON)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if o.PlotFile == "" {
		return nil
	}
	f, err := os.Create(o.PlotFile)
	if err != nil {
		return err
	}
	html := strings.EqualFold(filepath.Ext(o.PlotFile), ".html") || strings.EqualFold(filepath.Ext(o.PlotFile), ".htm")
	if err := writePlot(f, r, html); err != nil {
		_ = f.Close()
		return err
	}
	fmt.Fprintf(o.Out, "plot written to %s\n", o.PlotFile)
	return f.Close()
}

// printTable prints the human summary.
func (r *Result) printTable(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\nwail bench  %s\n", r.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "workload   batch %d, %d senders, %d connections, %d keys/table (%s), %d-byte values, mix %s, gzip %v, seed %d\n",
		c.Batch, c.Concurrency, c.Connections, c.Keys, r.distString(), c.ValueSize, c.Mix, c.AcceptGzip, c.Seed)
	if r.Backend.Target != "" {
		fmt.Fprintf(w, "backend    %s\n", r.Backend)
	}
	m := r.Machine
	fmt.Fprintf(w, "machine    %d CPUs (%s), %s/%s, %s; load average %s at start, %s at end\n",
		m.CPUs, m.CPUModel, m.OS, m.Arch, m.GoVersion, m.LoadAvgFrom, m.LoadAvgTo)
	if r.Backend.SharesCPU != "" {
		fmt.Fprintf(w, "note       %s\n", r.Backend.SharesCPU)
	}
	if len(r.Steps) > 0 {
		r.printSteps(w)
	}
	if fm := r.FindMax; fm != nil {
		if fm.Found {
			fmt.Fprintf(w, "highest sustainable rate: %.0f writes/s (%.0f achieved; e2e p99 <= %s, lag not growing, no errors); first unsustainable: %s\n",
				fm.MaxSustainableRate, fm.MaxSustainableWritesPerSec, fmtMs(fm.BoundMs, 1), rateOrNone(fm.FirstUnsustainableRate))
		} else {
			fmt.Fprintln(w, "no sustainable rate found")
		}
		fmt.Fprintf(w, "search stopped: %s\n", fm.StoppedBecause)
		fm.printConfirm(w)
	}
	if r.Floor != nil {
		r.Floor.print(w)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the results above are partial")
	}
}

func (r *Result) distString() string {
	c := r.Config
	s := c.KeysDist
	if c.KeysDist == DistZipf {
		s = fmt.Sprintf("zipf s=%g", c.ZipfS)
	}
	if c.HotShare > 0 {
		s += fmt.Sprintf(", %.0f%% to %d hot keys", c.HotShare*100, c.HotKeys)
	}
	return s
}

func rateOrNone(r float64) string {
	if r == 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f writes/s", r)
}

func (r *Result) printSteps(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\ttarget/s\twrites/s\tevents/s\tack p50\tp99\tp999\te2e p50\tp99\tp999\tmax\tdeliv p99\treads/ev\tintents/ev\tmax lag\terrors\tunmatched\t")
	for _, st := range r.Steps {
		a, e := st.Ack, st.E2E
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%d\t%d\t%d\t\n",
			st.Index, st.TargetRate, st.WritesPerSec, st.EventsPerSec,
			fmtMs(a.P50, a.Count), fmtMs(a.P99, a.Count), fmtMs(a.P999, a.Count),
			fmtMs(e.P50, e.Count), fmtMs(e.P99, e.Count), fmtMs(e.P999, e.Count), fmtMs(e.Max, e.Count),
			fmtMs(st.Delivery.P99, st.Delivery.Count), st.ReadsPerEvent, st.IntentsPerEvent, st.MaxLag, st.Errors, st.Unmatched)
	}
	_ = tw.Flush()
	for _, st := range r.Steps {
		line := fmt.Sprintf("step %d: %s; %d writes sent, %d superseded, max send delay %s, %.0fs measured",
			st.Index, st.Verdict, st.Sent, st.Superseded, fmtMs(st.MaxSendDelayMs, 1), st.Seconds)
		if st.Errors > 0 {
			line += " (errors: " + errorKinds(st.ErrorsByKind) + ")"
		}
		fmt.Fprintln(w, line)
	}
}

func errorKinds(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
