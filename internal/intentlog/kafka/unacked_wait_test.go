package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCutOffDoesNotWaitForTheReason: an append cut off by its deadline
// answers at once, with the reason the metadata last gave (none yet on
// the first), while the metadata is read in the background. It waited
// for that read (up to a second), which the proxy took from the store
// write of an independent table: with the broker down, writes that had
// to go to the store without their intent failed "deadline exceeded"
// (TestIndependentAcrossBrokerStop, in CI).
func TestCutOffDoesNotWaitForTheReason(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	why := errors.New("partition 0 of t has no leader")
	l := &Log{diagnoseHook: func(context.Context, string, []int32) error {
		<-release // the brokers do not answer
		return why
	}}
	krs := []*kgo.Record{{Topic: "t", Partition: 0}}
	// The first: no reason yet, and no wait for one.
	first := make(chan error, 1)
	go func() { first <- l.cutOff(context.DeadlineExceeded, "t", krs) }()
	select {
	case err := <-first:
		if err != context.DeadlineExceeded {
			t.Fatalf("first cut-off append: %v; want the deadline alone", err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("a cut-off append waited for the metadata's reason")
	}
	// Another while the read runs: still at once.
	if err := l.cutOff(context.DeadlineExceeded, "t", krs); err != context.DeadlineExceeded {
		t.Fatalf("second cut-off append: %v; want the deadline alone", err)
	}
	close(release)
	l.diags.Wait()
	if err := l.cutOff(context.DeadlineExceeded, "t", krs); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, why) {
		t.Fatalf("cut-off append once the metadata was read: %v; want the deadline and why", err)
	}
	// A cancelled caller gets its error alone.
	if err := l.cutOff(context.Canceled, "t", krs); err != context.Canceled {
		t.Fatalf("cancelled append: %v", err)
	}
}
