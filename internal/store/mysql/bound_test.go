package mysql

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestWriteErr: only an error of the COMMIT leaves the outcome unknown;
// before it, nothing can have committed.
func TestWriteErr(t *testing.T) {
	t.Parallel()
	var s Store
	ctx := t.Context()
	for _, tc := range []struct {
		err        error
		notApplied bool
	}{
		{context.DeadlineExceeded, true},
		{io.ErrUnexpectedEOF, true},
		{commitErr{io.ErrUnexpectedEOF}, false},
		{commitErr{context.DeadlineExceeded}, false},
	} {
		if got := s.writeErr(ctx, "t", tc.err); errors.Is(got, store.ErrNotApplied) != tc.notApplied {
			t.Errorf("writeErr(%v) = %v, want ErrNotApplied: %v", tc.err, got, tc.notApplied)
		}
	}
}
