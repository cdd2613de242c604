package sink

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestValidateBackoff: backoff bounds the API would take but a duration
// cannot hold (far over 7 days overflowed into a negative wait: retries
// without any backoff, never given up) are refused with a message that
// names the bound; 7 days is taken. A definition stored before the check
// still gets a bounded, non-negative wait (millis).
func TestValidateBackoff(t *testing.T) {
	t.Parallel()
	week := (7 * 24 * time.Hour).Milliseconds()
	for _, tc := range []struct {
		min, max int64
		ok       bool
	}{
		{100, 5000, true},
		{100, week, true},
		{week, week, true},
		{100, week + 1, false},
		{100, 10_000_000_000_000, false},
		{100, math.MaxInt64, false},
		{0, 100, false},
		{200, 100, false},
	} {
		s := WithDefaults(&wailv1.Sink{Table: "t", Name: "s", Url: "http://127.0.0.1:1/x", BackoffMinMs: tc.min, BackoffMaxMs: tc.max})
		err := Validate(s)
		if tc.ok != (err == nil) {
			t.Fatalf("backoff %d..%d: %v; want ok %v", tc.min, tc.max, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "backoff")) {
			t.Fatalf("backoff %d..%d: %v", tc.min, tc.max, err)
		}
	}
	for _, ms := range []int64{math.MaxInt64, 10_000_000_000_000, -5} {
		if d := millis(ms); d < 0 || d > 7*24*time.Hour {
			t.Fatalf("millis(%d) = %s", ms, d)
		}
	}
}
