package api

import (
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// retryInfo is the RetryInfo detail's delay of err, if it has one.
func retryInfo(t *testing.T, err error) (time.Duration, bool) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a connect error", err)
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatal(derr)
		}
		if ri, ok := v.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// TestRefusalsSayRetry: the refusals that clear by themselves (no stream
// slot free, in total or for the client; over a quota) carry a RetryInfo
// detail with the wait to retry after, so that a client can tell them by
// code and detail from the resource_exhausted errors that retrying does
// not help.
func TestRefusalsSayRetry(t *testing.T) {
	t.Parallel()
	full := func(kind slotKind, l SlotLimits) error {
		s := newSlots(kind, l)
		if _, err := s.take("a"); err != nil {
			t.Fatal(err)
		}
		_, err := s.take("a")
		return err
	}
	now := time.Unix(1e9, 0)
	l := newLimiter("read", "quotas.reads_per_second", 2, 1)
	if _, ok := l.take("a", 1, now); !ok {
		t.Fatal("first read refused")
	}
	wait, ok := l.take("a", 1, now)
	if ok {
		t.Fatal("second read taken")
	}
	for _, tc := range []struct {
		name string
		err  error
		want time.Duration
	}{
		{"event streams in total", full(eventStreams, SlotLimits{MaxStreams: 1}), SlotRetryDelay},
		{"event streams per client", full(eventStreams, SlotLimits{MaxStreamsPerClient: 1}), SlotRetryDelay},
		{"write streams in total", full(writeStreams, SlotLimits{MaxStreams: 1}), SlotRetryDelay},
		{"write streams per client", full(writeStreams, SlotLimits{MaxStreamsPerClient: 1}), SlotRetryDelay},
		{"over the read quota", l.exhausted("client a", wait), 500 * time.Millisecond},
	} {
		if connect.CodeOf(tc.err) != connect.CodeResourceExhausted {
			t.Errorf("%s: %v, want resource_exhausted", tc.name, tc.err)
		}
		if got, ok := retryInfo(t, tc.err); !ok || got != tc.want {
			t.Errorf("%s: RetryInfo %s (%v), want %s", tc.name, got, ok, tc.want)
		}
	}
}
