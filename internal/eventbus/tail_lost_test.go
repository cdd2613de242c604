package eventbus

import (
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSubscribeTailLost: a stream whose partition's log lost events after
// the stream read them (an unclean Kafka leader election), new events
// taking those offsets again, delivers the new events, as a stream
// resumed from its cursor does (clamped to the log's end): whether the
// fetch at its position answers out of range (past the new end) or the
// reader finds the log diverging below it (Kafka's leader-epoch check).
// Before, the first started its reader again at the log's start and the
// stream passed every offset below its old position, the new events at
// the lost offsets with them, silently; the second failed the stream
// (unavailable), and a client resuming from its cursor passed them too
// once new events had outgrown it.
func TestSubscribeTailLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lose func(log *memLog)
	}{
		{"out of range past the end", func(log *memLog) {
			log.truncate(Topic("t"), 0, 2) // offsets 2 and 3 lost
		}},
		{"a truncation the reader found", func(log *memLog) {
			log.mu.Lock()
			log.nextOnce = &intentlog.Truncation{From: 2, Read: 4, Epoch: 1}
			log.mu.Unlock()
			log.truncate(Topic("t"), 0, 2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newStreams(t, 1, Limits{})
			ctx, log, b, c := st.ctx, st.log, st.bus, st.c
			upserts(t, b, 1, 2, 3, 4) // offsets 0..3
			s, err := subscribe(ctx, c, "t", "beginning")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			receive(t, s, 4)
			// The reader at 4 finds the loss before anything new comes:
			// the next reads at 2.
			again := make(chan struct{})
			var once sync.Once
			log.mu.Lock()
			log.onNext = func(_ int32, pos int64) {
				if pos == 2 {
					once.Do(func() { close(again) })
				}
			}
			log.mu.Unlock()
			tc.lose(log)
			select {
			case <-again:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream read on nowhere near where the log lost its events")
			}
			upserts(t, b, 5, 6, 7) // offsets 2, 3, 4 again
			got := receive(t, s, 3)
			for i, want := range []struct {
				off int64
				v   uint64
			}{{2, 5}, {3, 6}, {4, 7}} {
				if got[i].Offset != want.off || got[i].Event.GetVersion() != want.v {
					t.Fatalf("event %d after the loss: offset %d v%d; want offset %d v%d (every new event)",
						i, got[i].Offset, got[i].Event.GetVersion(), want.off, want.v)
				}
			}
		})
	}
}
