package group

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitRefreshKafka: on Kafka (kfake), a member that holds a
// partition of a quiet table has its position committed again, in
// transactions of the partition's fenced committer, at its offset and
// with the leader epoch committed with it (a refresh must not drop the
// epoch that validates the next member's start).
func TestCommitRefreshKafka(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			t.Parallel()
			r := newKafkaRig(t, 1)
			var commits atomic.Int32
			r.c.ControlKey(int16(kmsg.TxnOffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
				r.c.KeepControl()
				commits.Add(1)
				return nil, nil, false
			})
			r.write(t, 5)
			G := r.groups(shared)(nil)
			defer G.Close()
			// Set once the refresh loop is waiting on its first timer,
			// taken from the default (an hour: a minute's tick), as it can
			// be when the server sets it after New: the loop takes the new
			// interval at once (it slept out that minute, and this test
			// timed out in CI).
			time.Sleep(50 * time.Millisecond)
			G.WithCommitRefresh(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := G.Join(ctx, r.tb, "g", "a", true)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Leave()
			if m, err := s.Next(ctx); err != nil || len(m.Granted) != 1 || m.Granted[0].Offset != 5 {
				t.Fatalf("first message %+v, %v; want the grant at 5", m, err)
			}
			before := commits.Load()
			for commits.Load() < before+3 {
				if ctx.Err() != nil {
					t.Fatalf("%d commits after the grant, want 3 refreshes", commits.Load()-before)
				}
				time.Sleep(10 * time.Millisecond)
			}
			c, err := r.l.CommittedEpochs(ctx, LogGroup("g"), "ev")
			if err != nil {
				t.Fatal(err)
			}
			if c[0].Offset != 5 || c[0].Epoch < 0 {
				t.Errorf("committed %+v after refreshes; want offset 5 with the leader epoch of the event at 4", c[0])
			}
		})
	}
}
