package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMillis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ms   int64
		want time.Duration
		ok   bool
	}{
		{0, 0, true},
		{1500, 1500 * time.Millisecond, true},
		{9223372036854, 9223372036854 * time.Millisecond, true},
		{9223372036855, 0, false},
		{288230376151721504, 0, false},
		{-1, 0, false},
	} {
		got, err := Millis("visibilityWindowMs", tc.ms)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Millis(%d) = %v, %v", tc.ms, got, err)
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "visibilityWindowMs")) {
			t.Errorf("Millis(%d): error %v", tc.ms, err)
		}
	}
}
