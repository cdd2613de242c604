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

// TestFindMax: with --confirm 0 the search is what it was before
// confirmations existed, step for step.
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
			o.StartRate, o.MaxRate, o.MaxSteps, o.Confirm = tc.start, tc.maxRate, tc.maxSteps, 0
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
			if fm.Confirmed || fm.ConfirmedRate != 0 || len(fm.ConfirmRuns) != 0 || fm.ConfirmStoppedBecause != "" {
				t.Errorf("--confirm 0 confirmed: %+v", fm)
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

// scriptRunner runs steps whose verdict comes from pass(rate, n), n
// counting the runs at that rate from 0; the step's writes/s is rate - n.
// The call numbered cancelAt (from 0) cancels ctx and is interrupted.
func scriptRunner(pass func(rate float64, n int) bool, cancelAt int, cancel context.CancelFunc, rates *[]float64) stepFunc {
	return func(_ context.Context, idx int, rate float64, _ time.Duration) Step {
		n := 0
		for _, r := range *rates {
			if r == rate {
				n++
			}
		}
		*rates = append(*rates, rate)
		st := Step{Index: idx, TargetRate: rate, WritesPerSec: rate - float64(n), E2E: latency.Percentiles{Count: 100, P99: 20}}
		if !pass(rate, n) {
			st.E2E.P99 = 5000
		}
		if idx == cancelAt {
			cancel()
			st.Interrupted = true
		}
		judge(&st, time.Second)
		return st
	}
}

// upTo passes every run of a rate up to capacity; except lists the runs
// (by rate, from 0) that go the other way.
func upTo(capacity float64, except map[float64][]int) func(float64, int) bool {
	return func(rate float64, n int) bool {
		return (rate <= capacity) != slices.Contains(except[rate], n)
	}
}

// TestFindMaxConfirm: after the search, the highest sustainable rate is
// rerun --confirm times and holds only if every rerun passes; otherwise
// the next lower sustainable rate is tried. The search's fields keep their
// meaning. The search from 10000 runs 10000, 15000, 22500, 33750, 50625
// (fails at capacity 45000), then bisects at 42188.
func TestFindMaxConfirm(t *testing.T) {
	t.Parallel()
	search := []float64{10000, 15000, 22500, 33750, 50625, 42188}
	tests := []struct {
		name      string
		pass      func(rate float64, n int) bool
		confirm   int
		maxSteps  int
		cancelAt  int
		wantRates []float64 // after the search's
		wantMax   float64   // max_sustainable_rate
		wantConf  float64   // confirmed_rate (0: none held)
		wantAchvd float64   // confirmed_writes_per_sec
		wantRuns  []bool    // the reruns' verdicts
		wantWhy   string
	}{
		{"holds every time", upTo(45000, nil), 2, 20, -1,
			[]float64{42188, 42188}, 42188, 42188, 42186, []bool{true, true}, "42188 writes/s held in all 2 reruns"},
		{"passes once then fails: the confirmed max steps down", upTo(45000, map[float64][]int{42188: {1}}), 2, 20, -1,
			[]float64{42188, 33750, 33750}, 42188, 33750, 33748, []bool{false, true, true}, "33750 writes/s held"},
		{"the last rerun fails", upTo(45000, map[float64][]int{42188: {2}}), 2, 20, -1,
			[]float64{42188, 42188, 33750, 33750}, 42188, 33750, 33748, []bool{true, false, true, true}, "33750 writes/s held"},
		{"two rates fail in turn", upTo(45000, map[float64][]int{42188: {1}, 33750: {2}}), 2, 20, -1,
			[]float64{42188, 33750, 33750, 22500, 22500}, 42188, 22500, 22498, []bool{false, true, false, true, true}, "22500 writes/s held"},
		{"no rate holds", func(rate float64, n int) bool { return rate <= 45000 && n == 0 }, 2, 20, -1,
			[]float64{42188, 33750, 22500, 15000, 10000}, 42188, 0, 0, []bool{false, false, false, false, false}, "no sustainable rate held"},
		{"one rerun", upTo(45000, map[float64][]int{42188: {2}}), 1, 20, -1,
			[]float64{42188}, 42188, 42188, 42187, []bool{true}, "held in all 1 reruns"},
		{"max steps reached during the confirmation", upTo(45000, map[float64][]int{42188: {1}}), 2, 8, -1,
			[]float64{42188, 33750}, 42188, 0, 0, []bool{false, true}, "ran --max-steps (8) steps while confirming 33750 writes/s"},
		{"max steps used up by the search", upTo(45000, nil), 2, 6, -1,
			nil, 42188, 0, 0, nil, "ran --max-steps (6) steps while confirming 42188 writes/s"},
		{"interrupted during the confirmation", upTo(45000, nil), 2, 20, 7,
			[]float64{42188, 42188}, 42188, 0, 0, []bool{true, false}, "interrupted while confirming 42188 writes/s"},
		{"interrupted during the search", upTo(45000, nil), 2, 20, 5,
			nil, 33750, 0, 0, nil, "not run: interrupted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			o.StartRate, o.MaxSteps, o.Confirm = 10000, tc.maxSteps, tc.confirm
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var rates []float64
			steps, fm := findMax(ctx, &o, scriptRunner(tc.pass, tc.cancelAt, cancel, &rates))
			wantSearch := search
			if tc.cancelAt >= 0 && tc.cancelAt < len(search) {
				wantSearch = search[:tc.cancelAt+1]
			}
			if want := append(slices.Clone(wantSearch), tc.wantRates...); !slices.Equal(rates, want) || len(steps) != len(rates) {
				t.Errorf("rates %v (%d steps), want %v", rates, len(steps), want)
			}
			if fm.MaxSustainableRate != tc.wantMax || fm.Confirm != tc.confirm {
				t.Errorf("max sustainable %v, confirm %d; want %v, %d", fm.MaxSustainableRate, fm.Confirm, tc.wantMax, tc.confirm)
			}
			if fm.ConfirmedRate != tc.wantConf || fm.Confirmed != (tc.wantConf > 0) || fm.ConfirmedWritesPerSec != tc.wantAchvd {
				t.Errorf("confirmed %v %v (%v achieved), want %v (%v achieved)", fm.Confirmed, fm.ConfirmedRate, fm.ConfirmedWritesPerSec, tc.wantConf, tc.wantAchvd)
			}
			var runs []bool
			for i, r := range fm.ConfirmRuns {
				runs = append(runs, r.Sustainable)
				if st := steps[r.Step]; r.Step != len(wantSearch)+i || st.TargetRate != r.Rate || st.Sustainable != r.Sustainable || st.Verdict != r.Verdict {
					t.Errorf("confirm run %d %+v does not match step %d %+v", i, r, r.Step, st)
				}
			}
			if !slices.Equal(runs, tc.wantRuns) {
				t.Errorf("reruns %v, want %v", runs, tc.wantRuns)
			}
			if !strings.Contains(fm.ConfirmStoppedBecause, tc.wantWhy) {
				t.Errorf("confirmation stopped because %q, want %q", fm.ConfirmStoppedBecause, tc.wantWhy)
			}
		})
	}
}

// TestPrintConfirm: the text summary keeps the search's highest rate and
// adds the reruns and the confirmed maximum; without --confirm it is what
// it was.
func TestPrintConfirm(t *testing.T) {
	t.Parallel()
	search := FindMax{BoundMs: 1000, Found: true, MaxSustainableRate: 42188, MaxSustainableWritesPerSec: 42000,
		FirstUnsustainableRate: 50625, StoppedBecause: "bisected once"}
	confirmed := search
	confirmed.Confirm, confirmed.Confirmed, confirmed.ConfirmedRate, confirmed.ConfirmedWritesPerSec = 2, true, 33750, 33700
	confirmed.ConfirmRuns = []ConfirmRun{{Step: 6, Rate: 42188, WritesPerSec: 41000, Verdict: "not sustainable: e2e p99 1.20s > 1.00s"},
		{Step: 7, Rate: 33750, WritesPerSec: 33700, Sustainable: true, Verdict: "sustainable"},
		{Step: 8, Rate: 33750, WritesPerSec: 33750, Sustainable: true, Verdict: "sustainable"}}
	confirmed.ConfirmStoppedBecause = "33750 writes/s held in all 2 reruns"
	none := search
	none.Confirm, none.ConfirmStoppedBecause = 2, "interrupted while confirming 42188 writes/s"
	tests := []struct {
		name    string
		fm      FindMax
		want    []string
		notWant string
	}{
		{"no confirmation", search, []string{"highest sustainable rate: 42188 writes/s (42000 achieved", "search stopped: bisected once\n"}, "confirm"},
		{"confirmed lower", confirmed, []string{
			"highest sustainable rate: 42188 writes/s",
			"confirmation (--confirm 2: every rerun must be sustainable):\n" +
				"  step 6 at 42188 writes/s: 41000 writes/s, not sustainable: e2e p99 1.20s > 1.00s\n" +
				"  step 7 at 33750 writes/s: 33700 writes/s, sustainable\n" +
				"  step 8 at 33750 writes/s: 33750 writes/s, sustainable\n" +
				"confirmed maximum: 33750 writes/s (33700 achieved at least; sustainable in its search step and 2 reruns)\n" +
				"confirmation stopped: 33750 writes/s held in all 2 reruns\n"}, ""},
		{"none confirmed", none, []string{"confirmed maximum: none\nconfirmation stopped: interrupted while confirming 42188 writes/s\n"}, ""},
	}
	for _, tc := range tests {
		var b strings.Builder
		r := Result{FindMax: &tc.fm}
		r.printTable(&b)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, b.String())
			}
		}
		if tc.notWant != "" && strings.Contains(b.String(), tc.notWant) {
			t.Errorf("%s: output has %q:\n%s", tc.name, tc.notWant, b.String())
		}
	}
}
