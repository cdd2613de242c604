package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name string
		left time.Duration // 0: no deadline
		want time.Duration
		none bool // ErrNotApplied
	}{
		{"no deadline", 0, 0, false},
		{"a tenth is kept back", 300 * time.Millisecond, 270 * time.Millisecond, false},
		{"at least 5 ms", 20 * time.Millisecond, 15 * time.Millisecond, false},
		{"at most 250 ms", 5 * time.Second, 4750 * time.Millisecond, false},
		{"only the margin left", 5 * time.Millisecond, 0, true},
		{"past the deadline", -time.Second, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tc.left != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, now.Add(tc.left))
				defer cancel()
			}
			got, err := Budget(ctx, now)
			if tc.none != errors.Is(err, store.ErrNotApplied) || (!tc.none && err != nil) {
				t.Fatalf("Budget = %s, %v; want ErrNotApplied: %v", got, err, tc.none)
			}
			if got != tc.want {
				t.Errorf("Budget = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSessionBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ timeout, want time.Duration }{
		{5 * time.Second, 4750 * time.Millisecond},
		{time.Second, 900 * time.Millisecond},
		{20 * time.Millisecond, 15 * time.Millisecond},
		{5 * time.Millisecond, 5 * time.Millisecond},
		{time.Millisecond, time.Millisecond},
	} {
		if got := SessionBound(tc.timeout); got != tc.want {
			t.Errorf("SessionBound(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}
