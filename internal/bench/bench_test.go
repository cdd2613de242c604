package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// TestRunInProcess is `wail bench --duration 3s` at a modest rate against an
// in-process server: it completes, and its JSON has every field of Result
// (no timing thresholds).
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Duration, o.Warmup, o.Rate, o.Keys, o.Concurrency, o.NoSync = 3*time.Second, 500*time.Millisecond, 300, 500, 8, true
	o.Tables, o.Dist, o.HotShare = 2, DistZipf, 0.1
	o.DataDir = t.TempDir()
	var out logbuf.Buffer
	var js bytes.Buffer
	o.Out, o.JSON, o.PlotFile = &out, &js, filepath.Join(t.TempDir(), "bench.svg")
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if len(res.Steps) != 1 || res.Steps[0].Acked == 0 || len(res.Samples) == 0 {
		t.Fatalf("steps %+v, %d samples\n%s", res.Steps, len(res.Samples), out.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, js.String())
	}
	checkFields(t, "", reflect.TypeFor[Result](), doc)
	for _, want := range []string{"preloading", "step 0", "e2e p50", "in-process", "plot written"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if b, err := os.ReadFile(o.PlotFile); err != nil || !bytes.Contains(b, []byte("</svg>")) {
		t.Errorf("plot: %v", err)
	}
}

// TestFloorOnly measures the floor briefly: every rate is positive.
func TestFloorOnly(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.FloorOnly, o.FloorDuration, o.Concurrency, o.Keys, o.NoSync = true, 200*time.Millisecond, 4, 1000, true
	o.DataDir = t.TempDir()
	var out logbuf.Buffer
	var js bytes.Buffer
	o.Out, o.JSON = &out, &js
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	f := res.Floor
	if f == nil || f.LogAppend.RecordsPerSec <= 0 || f.PebbleBatch.RecordsPerSec <= 0 || f.StoreApply.RecordsPerSec <= 0 {
		t.Fatalf("floor %+v\n%s", f, out.String())
	}
	if len(f.Pipeline) != len(floorPipelineBatches)*len(floorPipelineWriters) || f.Best.RecordsPerSec <= 0 {
		t.Fatalf("pipeline %+v, best %+v", f.Pipeline, f.Best)
	}
	for _, p := range f.Pipeline {
		if p.RecordsPerSec <= 0 || p.Call.Count == 0 || p.RecordsPerSec > f.Best.RecordsPerSec {
			t.Errorf("pipeline at batch %d, %d writers: %+v (best %+v)", p.Batch, p.Writers, p.FloorRate, f.Best)
		}
	}
	if f.IntentBytes < keyBytes || f.Partitions != 8 {
		t.Errorf("intent %d bytes, %d partitions", f.IntentBytes, f.Partitions)
	}
	// The floor runs with a server's collector setting, as the load does.
	cur := debug.SetGCPercent(-1)
	debug.SetGCPercent(cur)
	if gc := res.Machine.GC; gc.Percent != cur || gc.PercentFrom == "" || !strings.Contains(out.String(), gc.String()) {
		t.Errorf("machine.gc %+v: not what the process runs with (GC percent %d), or not printed:\n%s", gc, cur, out.String())
	} else if os.Getenv("GOGC") == "" && gc.Percent != config.Default().Memory.GCPercent {
		t.Errorf("the floor ran with GC percent %d, not a server's default %d", gc.Percent, config.Default().Memory.GCPercent)
	}
	var doc map[string]any
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	checkFields(t, "floor", reflect.TypeFor[Floor](), doc["floor"].(map[string]any))
	if !strings.Contains(out.String(), "floor on this machine") {
		t.Errorf("output:\n%s", out.String())
	}
}

// checkFields fails for every json field of typ missing from v; it walks
// nested structs, non-null pointers and the first element of slices.
func checkFields(t *testing.T, path string, typ reflect.Type, v map[string]any) {
	t.Helper()
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		val, ok := v[name]
		if !ok {
			t.Errorf("JSON lacks %s.%s", path, name)
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
			if m, ok := val.(map[string]any); ok {
				checkFields(t, path+"."+name, ft, m)
			} else if f.Type.Kind() != reflect.Pointer {
				t.Errorf("JSON %s.%s is %T, want an object", path, name, val)
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if arr, ok := val.([]any); ok && len(arr) > 0 {
				checkFields(t, path+"."+name+"[0]", ft.Elem(), arr[0].(map[string]any))
			}
		}
	}
}

// TestFloorCompare: wail's rate is divided by the best pipeline rate (and
// by each raw rate), from find-max's confirmed maximum, else its highest
// sustainable rate, else from the last step; without either there is no
// ratio.
func TestFloorCompare(t *testing.T) {
	floor := func() *Floor {
		return &Floor{LogAppend: FloorRate{RecordsPerSec: 400000}, PebbleBatch: FloorRate{RecordsPerSec: 200000},
			StoreApply: FloorRate{RecordsPerSec: 100000}, Best: PipelineRate{Batch: 1000, Writers: 4, FloorRate: FloorRate{RecordsPerSec: 40000}}}
	}
	for _, tc := range []struct {
		name string
		res  Result
		rate float64
		want FloorRatio
	}{
		{"find-max", Result{FindMax: &FindMax{Found: true, MaxSustainableRate: 20000}, Steps: []Step{{WritesPerSec: 1}}}, 20000,
			FloorRatio{LogAppend: 0.05, PebbleBatch: 0.1, StoreApply: 0.2, Pipeline: 0.5}},
		{"find-max confirmed", Result{FindMax: &FindMax{Found: true, MaxSustainableRate: 30000, Confirm: 2, Confirmed: true, ConfirmedRate: 20000}}, 20000,
			FloorRatio{LogAppend: 0.05, PebbleBatch: 0.1, StoreApply: 0.2, Pipeline: 0.5}},
		{"find-max not confirmed", Result{FindMax: &FindMax{Found: true, MaxSustainableRate: 20000, Confirm: 2}}, 20000,
			FloorRatio{LogAppend: 0.05, PebbleBatch: 0.1, StoreApply: 0.2, Pipeline: 0.5}},
		{"last step", Result{Steps: []Step{{WritesPerSec: 1}, {WritesPerSec: 4000, TargetRate: 4000}}}, 4000,
			FloorRatio{LogAppend: 0.01, PebbleBatch: 0.02, StoreApply: 0.04, Pipeline: 0.1}},
		{"nothing", Result{}, 0, FloorRatio{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := floor()
			f.compare(&tc.res)
			if f.WailRate != tc.rate || f.Ratio != tc.want {
				t.Errorf("rate %v ratio %+v, want %v %+v", f.WailRate, f.Ratio, tc.rate, tc.want)
			}
		})
	}
}

// TestRunProducer is `wail bench --producer --batch 1` briefly: every
// write goes through client.Producer, is acknowledged and matched to its
// event, and none fails.
func TestRunProducer(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Duration, o.Warmup, o.Rate, o.Keys, o.Concurrency, o.NoSync = 2*time.Second, 200*time.Millisecond, 500, 500, 64, true
	o.Batch, o.Producer = 1, true
	o.DataDir = t.TempDir()
	var out logbuf.Buffer
	o.Out = &out
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	st := res.Steps[0]
	if st.Acked == 0 || st.Errors != 0 || st.Unmatched != 0 || st.Events == 0 {
		t.Fatalf("acked %d, errors %v, unmatched %d, events %d\n%s", st.Acked, st.ErrorsByKind, st.Unmatched, st.Events, out.String())
	}
	o.Batch = 10
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--batch 1") {
		t.Fatalf("--producer with --batch 10: %v", err)
	}
}
