package group

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitRefreshCloseBounded: a process holds partitions of several
// groups, whose positions are due to be committed again (refresh.go),
// when the Kafka brokers stop answering transactions; it shuts down
// while a refresh waits on one. Close must not wait for the refreshes:
// the server calls it within its shutdown budget, and a shared group's
// entry is left only after it (its partitions wait a lease meanwhile).
// Before, the loop went on over every group after Close, each renewal
// starting a transaction and then waiting for its abort (up to 10 s, not
// cancellable): 10 s per group.
func TestCommitRefreshCloseBounded(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			t.Parallel()
			r := newKafkaRig(t, 1)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) }) // before the cluster closes
			var hang atomic.Bool
			var hung atomic.Int32
			for _, key := range []kmsg.Key{kmsg.AddOffsetsToTxn, kmsg.EndTxn} {
				r.c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
					r.c.KeepControl()
					if hang.Load() { // the brokers stopped answering
						hung.Add(1)
						r.c.SleepControl(func() { <-release })
					}
					return nil, nil, false
				})
			}
			r.write(t, 5)
			G := r.groups(shared)(nil).WithCommitRefresh(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			const groups = 3
			for i := range groups {
				s, err := G.Join(ctx, r.tb, fmt.Sprintf("g%d", i), "m", true)
				if err != nil {
					t.Fatal(err)
				}
				if m, err := s.Next(ctx); err != nil || len(m.Granted) != 1 {
					t.Fatalf("group %d: first message %+v, %v; want the grant", i, m, err)
				}
			}
			hang.Store(true)
			for hung.Load() == 0 {
				if ctx.Err() != nil {
					t.Fatal("no refresh started")
				}
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			G.Close()
			took := time.Since(start)
			t.Logf("Close took %s (%d transactional requests hung)", took.Round(time.Millisecond), hung.Load())
			if took > 3*time.Second {
				t.Fatalf("Close took %s with %d groups due for a refresh and brokers that do not answer transactions: "+
					"the shutdown waited for the refreshes", took.Round(time.Millisecond), groups)
			}
		})
	}
}
