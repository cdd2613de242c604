package bench

// LagGrowth is the lag rule of --find-max for other drivers of the same
// method (internal/bench/versus): it fits a line to the second half of
// per-second lag samples and says whether the lag grows (see lagGrowth),
// for writes that enter the log one at a time (a quantum of 1).
func LagGrowth(lags []float64, rate float64) (slope float64, growing bool) {
	return lagGrowth(lags, rate, 1)
}
