package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	errRace := errors.New("deadlock")
	errOther := errors.New("syntax error")
	failed := errors.New("classified")
	tests := []struct {
		name      string
		errs      []error // of the runs in turn; nil from then on
		cancelled bool
		wantRuns  int
		want      error
	}{
		{"success", nil, false, 1, nil},
		{"a race, then success", []error{errRace, errRace}, false, 3, nil},
		{"another error", []error{errRace, errOther}, false, 2, failed},
		{"races outlast the attempts", []error{errRace, errRace, errRace, errRace}, false, 3, failed},
		{"ctx ends while waiting", []error{errRace}, true, 1, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			var runs, retried int
			r := Retry{
				Attempts:  3,
				Retryable: func(err error) bool { return errors.Is(err, errRace) },
				Retried:   func(attempt int, err error) { retried++ },
			}
			write := func() error {
				runs++
				if runs <= len(tc.errs) {
					return tc.errs[runs-1]
				}
				return nil
			}
			var last error
			fail := func(err error) error { last = err; return failed }
			err := r.Run(ctx, write, fail)
			if tc.cancelled && !errors.Is(err, store.ErrNotApplied) {
				t.Errorf("Run = %v: ctx ended while nothing was in flight, want store.ErrNotApplied", err)
			}
			if !errors.Is(err, tc.want) || runs != tc.wantRuns {
				t.Errorf("Run = %v after %d runs, want %v after %d", err, runs, tc.want, tc.wantRuns)
			}
			if retried != tc.wantRuns-1 && !tc.cancelled {
				t.Errorf("Retried told of %d runs, want %d", retried, tc.wantRuns-1)
			}
			if tc.want == failed && last != tc.errs[runs-1] {
				t.Errorf("fail got %v, want the last run's error %v", last, tc.errs[runs-1])
			}
			if tc.want != failed && last != nil {
				t.Errorf("fail got %v, want no call", last)
			}
		})
	}
}
