package latency

import (
	"testing"
	"time"
)

func TestRecordClampsAndSummarize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		d      time.Duration
		n      int64
		wantMs float64 // Max, within the histogram's precision
	}{
		{"negative clamps to 1µs", -time.Second, 1, 0.001},
		{"zero clamps to 1µs", 0, 2, 0.001},
		{"in range", 5 * time.Millisecond, 3, 5},
		{"above MaxLatency clamps to it", 2 * MaxLatency, 1, float64(MaxLatency.Milliseconds())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := NewHistogram()
			RecordN(h, tc.d, tc.n)
			p := Summarize(h)
			if p.Count != tc.n {
				t.Errorf("count = %d, want %d", p.Count, tc.n)
			}
			if tol := tc.wantMs / 500; p.Max < tc.wantMs-tol || p.Max > tc.wantMs+tol {
				t.Errorf("max = %v ms, want %v", p.Max, tc.wantMs)
			}
			if p.P50 != p.Max || p.P999 != p.Max {
				t.Errorf("one value, yet percentiles differ: %+v", p)
			}
		})
	}
}

func TestSummarizeEmpty(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	if p := Summarize(h); p != (Percentiles{}) {
		t.Errorf("empty histogram = %+v, want zero", p)
	}
	Record(h, time.Millisecond)
	if p := Summarize(h); p.Count != 1 || p.Mean < 0.999 || p.Mean > 1.001 {
		t.Errorf("one 1 ms write = %+v", p)
	}
}
