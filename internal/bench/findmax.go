package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// FindMax is the outcome of --find-max.
type FindMax struct {
	BoundMs float64 `json:"p99_bound_ms"`
	// MaxSustainableRate is the highest target rate of a sustainable step
	// of the search (0 if none was), MaxSustainableStep its index (-1 if
	// none) and MaxSustainableWritesPerSec what that step achieved. One
	// step decides it: the confirmation below does not change it.
	MaxSustainableRate         float64 `json:"max_sustainable_rate"`
	MaxSustainableStep         int     `json:"max_sustainable_step"`
	MaxSustainableWritesPerSec float64 `json:"max_sustainable_writes_per_sec"`
	// FirstUnsustainableRate is the lowest target rate of a step of the
	// search that was not sustainable (0 if none was).
	FirstUnsustainableRate float64 `json:"first_unsustainable_rate"`
	Found                  bool    `json:"found"`
	// StoppedBecause is why the search (the climb and the bisection)
	// ended; the confirmation has its own ConfirmStoppedBecause.
	StoppedBecause string `json:"stopped_because"`

	// Confirm is --confirm: how many more times the highest sustainable
	// rate is run after the search (0: not confirmed, as before --confirm).
	Confirm int `json:"confirm"`
	// Confirmed says that a rate held: its search step and all its Confirm
	// reruns were sustainable. ConfirmedRate is that rate, the highest one
	// that held (0 if none did), and ConfirmedWritesPerSec the lowest
	// writes/s achieved by its runs.
	Confirmed             bool    `json:"confirmed"`
	ConfirmedRate         float64 `json:"confirmed_rate"`
	ConfirmedWritesPerSec float64 `json:"confirmed_writes_per_sec"`
	// ConfirmRuns are the reruns in the order they ran (the steps with
	// these indexes hold the full results).
	ConfirmRuns []ConfirmRun `json:"confirm_runs"`
	// ConfirmStoppedBecause is why the confirmation ended ("" without
	// --confirm).
	ConfirmStoppedBecause string `json:"confirm_stopped_because"`
}

// ConfirmRun is one rerun of a sustainable rate after the search.
type ConfirmRun struct {
	Step         int     `json:"step"`
	Rate         float64 `json:"rate"`
	WritesPerSec float64 `json:"writes_per_sec"`
	Sustainable  bool    `json:"sustainable"`
	Verdict      string  `json:"verdict"`
}

// stepFunc runs one step at rate for dur.
type stepFunc func(ctx context.Context, idx int, rate float64, dur time.Duration) Step

// findMax searches for the highest sustainable rate (search), then, with
// o.Confirm > 0, confirms it (confirm). The two together run o.MaxSteps
// steps at most.
func findMax(ctx context.Context, o *Options, run stepFunc) ([]Step, FindMax) {
	steps, fm := search(ctx, o, run)
	fm.Confirm = o.Confirm
	fm.ConfirmRuns = []ConfirmRun{}
	if o.Confirm > 0 {
		steps = confirm(ctx, o, run, steps, &fm)
	}
	return steps, fm
}

// search steps the rate up from o.StartRate by o.StepFactor until a step
// is not sustainable, then runs one step halfway between the highest
// sustainable and the lowest unsustainable rate. If the first step already
// fails, it halves the rate until one passes, then bisects once the same
// way.
func search(ctx context.Context, o *Options, run stepFunc) ([]Step, FindMax) {
	fm := FindMax{BoundMs: float64(o.MaxP99) / 1e6, MaxSustainableStep: -1}
	var steps []Step
	rate, good, bad := math.Round(o.StartRate), 0.0, 0.0
	bisected := false
	for {
		if len(steps) == o.MaxSteps {
			fm.StoppedBecause = maxStepsReached(o)
			break
		}
		st := run(ctx, len(steps), rate, o.StepDuration)
		steps = append(steps, st)
		if interrupted(ctx, &st) {
			fm.StoppedBecause = "interrupted"
			break
		}
		if st.Sustainable && rate > good {
			good = rate
			fm.MaxSustainableRate, fm.MaxSustainableStep, fm.MaxSustainableWritesPerSec = rate, st.Index, st.WritesPerSec
		}
		if !st.Sustainable && (bad == 0 || rate < bad) {
			bad = rate
		}
		next, why := nextRate(rate, good, bad, o, &bisected)
		if next == 0 {
			fm.StoppedBecause = why
			break
		}
		rate = next
	}
	fm.FirstUnsustainableRate = bad
	fm.Found = good > 0
	return steps, fm
}

// confirm reruns the sustainable rates of the search, highest first, each
// up to o.Confirm times, until one holds: every rerun sustainable (a
// rerun that fails ends the rate's turn). It appends the reruns to steps
// and returns them; fm gets the runs and the confirmed rate.
func confirm(ctx context.Context, o *Options, run stepFunc, steps []Step, fm *FindMax) []Step {
	switch {
	case fm.StoppedBecause == "interrupted":
		fm.ConfirmStoppedBecause = "not run: interrupted"
		return steps
	case !fm.Found:
		fm.ConfirmStoppedBecause = "not run: no sustainable rate to confirm"
		return steps
	}
	for _, rate := range sustainableRates(steps) {
		lowest := math.Inf(1)
		for _, st := range steps {
			if st.TargetRate == rate && st.Sustainable {
				lowest = min(lowest, st.WritesPerSec)
			}
		}
		held := true
		for range o.Confirm {
			if len(steps) == o.MaxSteps {
				fm.ConfirmStoppedBecause = maxStepsReached(o) + fmt.Sprintf(" while confirming %.0f writes/s", rate)
				return steps
			}
			st := run(ctx, len(steps), rate, o.StepDuration)
			steps = append(steps, st)
			fm.ConfirmRuns = append(fm.ConfirmRuns, ConfirmRun{Step: st.Index, Rate: rate, WritesPerSec: st.WritesPerSec, Sustainable: st.Sustainable, Verdict: st.Verdict})
			if interrupted(ctx, &st) {
				fm.ConfirmStoppedBecause = fmt.Sprintf("interrupted while confirming %.0f writes/s", rate)
				return steps
			}
			if !st.Sustainable {
				held = false
				break
			}
			lowest = min(lowest, st.WritesPerSec)
		}
		if held {
			fm.Confirmed, fm.ConfirmedRate, fm.ConfirmedWritesPerSec = true, rate, lowest
			fm.ConfirmStoppedBecause = fmt.Sprintf("%.0f writes/s held in all %d reruns", rate, o.Confirm)
			return steps
		}
	}
	fm.ConfirmStoppedBecause = "no sustainable rate held in all its reruns"
	return steps
}

// sustainableRates are the distinct target rates of the sustainable steps,
// highest first.
func sustainableRates(steps []Step) []float64 {
	var rates []float64
	for _, st := range steps {
		if st.Sustainable && !slices.Contains(rates, st.TargetRate) {
			rates = append(rates, st.TargetRate)
		}
	}
	slices.Sort(rates)
	slices.Reverse(rates)
	return rates
}

func interrupted(ctx context.Context, st *Step) bool { return st.Interrupted || ctx.Err() != nil }

func maxStepsReached(o *Options) string {
	return fmt.Sprintf("ran --max-steps (%d) steps", o.MaxSteps)
}

// printConfirm prints the reruns and the confirmed maximum (nothing
// without --confirm).
func (fm *FindMax) printConfirm(w io.Writer) {
	if fm.Confirm == 0 {
		return
	}
	fmt.Fprintf(w, "confirmation (--confirm %d: every rerun must be sustainable):\n", fm.Confirm)
	for _, r := range fm.ConfirmRuns {
		fmt.Fprintf(w, "  step %d at %.0f writes/s: %.0f writes/s, %s\n", r.Step, r.Rate, r.WritesPerSec, r.Verdict)
	}
	fmt.Fprintln(w, fm.confirmedLine())
	fmt.Fprintf(w, "confirmation stopped: %s\n", fm.ConfirmStoppedBecause)
}

// confirmedLine is the confirmed maximum in a sentence.
func (fm *FindMax) confirmedLine() string {
	if !fm.Confirmed {
		return "confirmed maximum: none"
	}
	return fmt.Sprintf("confirmed maximum: %.0f writes/s (%.0f achieved at least; sustainable in its search step and %d reruns)",
		fm.ConfirmedRate, fm.ConfirmedWritesPerSec, fm.Confirm)
}

// nextRate returns the rate of the next step, or 0 and why the search ends.
func nextRate(rate, good, bad float64, o *Options, bisected *bool) (float64, string) {
	switch {
	case bad == 0:
		if o.MaxRate > 0 && rate >= o.MaxRate {
			return 0, "reached --max-rate"
		}
		next := math.Round(rate * o.StepFactor)
		if o.MaxRate > 0 {
			next = min(next, o.MaxRate)
		}
		return next, ""
	case good == 0:
		if next := math.Round(rate / 2); next >= 1 && next < rate {
			return next, ""
		}
		return 0, "no rate down to 1 write/s was sustainable"
	case !*bisected && bad-good > 1:
		*bisected = true
		return math.Round((good + bad) / 2), ""
	}
	return 0, "bisected once between the highest sustainable and the lowest unsustainable rate"
}

// judge decides whether a step is sustainable: e2e p99 within bound, the
// resolver lag not growing, no errors, every write matched, and at least
// 90% of the target rate acknowledged. The verdict says why not.
func judge(st *Step, bound time.Duration) {
	var why []string
	boundMs := float64(bound) / 1e6
	switch {
	case st.Interrupted:
		why = append(why, "interrupted")
	case st.E2E.Count == 0:
		why = append(why, "no end-to-end latency measured")
	case st.E2E.P99 > boundMs:
		why = append(why, fmt.Sprintf("e2e p99 %s > %s", fmtMs(st.E2E.P99, 1), fmtMs(boundMs, 1)))
	}
	if st.LagGrowing {
		why = append(why, fmt.Sprintf("lag growing (%+.0f intents/s)", st.LagSlope))
	}
	if st.Errors > 0 {
		why = append(why, fmt.Sprintf("%d errors", st.Errors))
	}
	if st.Unmatched > 0 {
		why = append(why, fmt.Sprintf("%d writes without an event", st.Unmatched))
	}
	if !st.Interrupted && st.WritesPerSec < 0.9*st.TargetRate {
		why = append(why, fmt.Sprintf("%.0f writes/s < 90%% of the target", st.WritesPerSec))
	}
	st.Sustainable = len(why) == 0
	st.Verdict = "sustainable"
	if !st.Sustainable {
		st.Verdict = "not sustainable: " + strings.Join(why, ", ")
	}
}

// lagGrowth fits a line to the second half of a step's per-second lag
// samples (at least the last 3) and returns its slope in intents per
// second. The lag is growing when the resolver falls behind instead of
// jittering around a level: the slope is above 2% of the rate (and 10
// intents/s), the fitted line rose by more than one quantum over the tail,
// and the last lag is above a quarter second of writes (and 100 intents)
// plus one quantum.
//
// quantum is the step in which the lag moves by itself: the writes of one
// request (--batch), which enter the log together and resolve together.
// At batches of 1000 a healthy pipeline's lag reads 0, 1000 or 2000
// depending on when the sample falls; without the quantum such noise
// looks like growth at low rates (a step of 2000/s whose last samples
// were 0, 1000, 1000).
func lagGrowth(lags []float64, rate float64, quantum int) (slope float64, growing bool) {
	if len(lags) < 3 {
		return 0, false
	}
	tail := lags[len(lags)/2:]
	if len(tail) < 3 {
		tail = lags[len(lags)-3:]
	}
	slope = linearSlope(tail)
	q := float64(max(quantum, 1))
	rise := slope * float64(len(tail)-1)
	last := tail[len(tail)-1]
	return slope, slope > max(0.02*rate, 10) && rise > q && last > max(0.25*rate, 100)+q
}

// linearSlope is the least-squares slope of ys against 0, 1, 2, ...
func linearSlope(ys []float64) float64 {
	n := float64(len(ys))
	var sx, sy, sxx, sxy float64
	for i, y := range ys {
		x := float64(i)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}
