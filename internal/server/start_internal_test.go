package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/store"
)

// TestWaitable: only errors that say a dependency cannot be reached yet
// make the start wait.
func TestWaitable(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("kafka: ping: %w", dial), true},
		{fmt.Errorf("postgres: open: %w", store.ErrUnavailable), true},
		{fmt.Errorf("attempt: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{fmt.Errorf("kafka: %w", kerr.CoordinatorNotAvailable), true},
		{&os.PathError{Op: "mkdir", Path: "/x", Err: syscall.ENOTDIR}, false},
		{fmt.Errorf("server: table t: %w", catalog.ErrConflict), false},
		{fmt.Errorf("kafka: %w", kerr.SaslAuthenticationFailed), false},
		{errors.New("pebble: lock held"), false},
	} {
		if got := waitable(tc.err); got != tc.want {
			t.Errorf("waitable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
