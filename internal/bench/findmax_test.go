package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/latency"
)

// capacityRunner simulates a target that sustains rates up to capacity.
func capacityRunner(capacity float64, rates *[]float64) stepFunc {
	return func(_ context.Context, idx int, rate float64, _ time.Duration) Step {
		*rates = append(*rates, rate)
		st := Step{Index: idx, TargetRate: rate, WritesPerSec: rate, E2E: latency.Percentiles{Count: 100, P99: 20}}
		if rate > capacity {
			st.E2E.P99 = 5000
			st.LagSlope, st.LagGrowing = rate-capacity, true
		}
		judge(&st, time.Second)
		return st
	}
}

func TestFindMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		capacity  float64
		start     float64
		maxRate   float64
		maxSteps  int
		wantRates []float64
		wantMax   float64
		wantBad   float64
	}{
		{"climb then bisect once", 10000, 1000, 0, 20,
			[]float64{1000, 1500, 2250, 3375, 5063, 7595, 11393, 9494}, 9494, 11393},
		{"bisect fails", 8000, 1000, 0, 20,
			[]float64{1000, 1500, 2250, 3375, 5063, 7595, 11393, 9494}, 7595, 9494},
		{"first step fails: halve, then bisect", 3000, 10000, 0, 20,
			[]float64{10000, 5000, 2500, 3750}, 2500, 3750},
		{"capped by max rate", 1e9, 1000, 2000, 20, []float64{1000, 1500, 2000}, 2000, 0},
		{"capped by max steps", 1e9, 1000, 0, 3, []float64{1000, 1500, 2250}, 2250, 0},
		{"nothing sustainable", 0.5, 2, 0, 20, []float64{2, 1}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			o.StartRate, o.MaxRate, o.MaxSteps = tc.start, tc.maxRate, tc.maxSteps
			var rates []float64
			steps, fm := findMax(context.Background(), &o, capacityRunner(tc.capacity, &rates))
			if !slices.Equal(rates, tc.wantRates) || len(steps) != len(rates) {
				t.Errorf("rates %v, want %v", rates, tc.wantRates)
			}
			if fm.MaxSustainableRate != tc.wantMax || fm.FirstUnsustainableRate != tc.wantBad || fm.Found != (tc.wantMax > 0) {
				t.Errorf("max %v, first unsustainable %v, found %v; want %v, %v", fm.MaxSustainableRate, fm.FirstUnsustainableRate, fm.Found, tc.wantMax, tc.wantBad)
			}
			if fm.StoppedBecause == "" {
				t.Error("no reason to stop given")
			}
		})
	}
}

func TestFindMaxInterrupted(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	ctx, cancel := context.WithCancel(context.Background())
	run := func(_ context.Context, idx int, rate float64, _ time.Duration) Step {
		cancel()
		return Step{Index: idx, TargetRate: rate, Interrupted: true}
	}
	steps, fm := findMax(ctx, &o, run)
	if len(steps) != 1 || fm.StoppedBecause != "interrupted" || fm.Found {
		t.Errorf("steps %d, %+v", len(steps), fm)
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	ok := Step{TargetRate: 1000, WritesPerSec: 990, E2E: latency.Percentiles{Count: 10, P99: 50}}
	tests := []struct {
		name    string
		mod     func(*Step)
		wantOK  bool
		wantWhy string
	}{
		{"all good", func(*Step) {}, true, "sustainable"},
		{"p99 over the bound", func(s *Step) { s.E2E.P99 = 1500 }, false, "e2e p99 1.50s > 1.00s"},
		{"lag growing", func(s *Step) { s.LagGrowing, s.LagSlope = true, 300 }, false, "lag growing (+300 intents/s)"},
		{"errors", func(s *Step) { s.Errors = 3 }, false, "3 errors"},
		{"unmatched", func(s *Step) { s.Unmatched = 2 }, false, "2 writes without an event"},
		{"rate not reached", func(s *Step) { s.WritesPerSec = 800 }, false, "800 writes/s < 90% of the target"},
		{"no e2e", func(s *Step) { s.E2E = latency.Percentiles{} }, false, "no end-to-end latency"},
		{"interrupted", func(s *Step) { s.Interrupted, s.WritesPerSec = true, 10 }, false, "interrupted"},
	}
	for _, tc := range tests {
		st := ok
		tc.mod(&st)
		judge(&st, time.Second)
		if st.Sustainable != tc.wantOK || !strings.Contains(st.Verdict, tc.wantWhy) {
			t.Errorf("%s: sustainable %v, verdict %q; want %v, %q", tc.name, st.Sustainable, st.Verdict, tc.wantOK, tc.wantWhy)
		}
	}
}

func TestLagGrowth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		lags    []float64
		rate    float64
		quantum int
		want    bool
		slope   float64
	}{
		{"flat", []float64{100, 120, 90, 110, 100, 95, 105, 100}, 5000, 10, false, 0},
		{"jitter at a high level", []float64{2000, 2600, 1900, 2500, 2100, 2400, 2000, 2300}, 5000, 10, false, 0},
		{"growing", []float64{0, 500, 1000, 1500, 2000, 2500, 3000, 3500}, 5000, 10, true, 500},
		{"growing but small", []float64{0, 10, 20, 30, 40, 50, 60, 70}, 5000, 10, false, 10},
		{"too few samples", []float64{0, 10000}, 5000, 10, false, 0},
		// Batches of 1000: a healthy lag reads 0 or 1000 (or 2000) by
		// when the sample falls. Both were judged growing by the rule
		// without the quantum (2026-11-30, 3750/s: e2e p99 413 ms,
		// "lag growing (+500 intents/s)"; 2000/s: e2e p99 111 ms).
		{"batches of 1000, healthy at 3750/s", []float64{0, 1000, 0, 0, 0, 356, 1000, 1000}, 3750, 1000, false, 0},
		{"batches of 1000, healthy at 2000/s", []float64{0, 0, 1000, 0, 0, 0, 1000, 1000}, 2000, 1000, false, 400},
		{"batches of 1000, without the quantum", []float64{0, 1000, 0, 0, 0, 356, 1000, 1000}, 3750, 1, true, 0},
		{"batches of 1000, one batch more per second", []float64{0, 1000, 2000, 3000, 4000, 5000, 6000, 7000}, 3750, 1000, true, 1000},
		{"batches of 1000, a slow rise of half a batch per second", []float64{1000, 1000, 2000, 2000, 3000, 3000, 4000, 4000}, 2000, 1000, true, 400},
		{"batches of 1000, one step up within the noise", []float64{0, 1000, 1000, 1000, 1000, 1000, 1000, 2000}, 3750, 1000, false, 300},
	}
	for _, tc := range tests {
		slope, growing := lagGrowth(tc.lags, tc.rate, tc.quantum)
		if growing != tc.want || (tc.slope != 0 && slope != tc.slope) {
			t.Errorf("%s: slope %v, growing %v; want %v (slope %v)", tc.name, slope, growing, tc.want, tc.slope)
		}
	}
}
