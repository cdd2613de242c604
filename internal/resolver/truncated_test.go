package resolver

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestCommittedBeyondLogEnd: a committed offset beyond the intent log's
// end (the log lost its tail after the group committed: on Kafka, an
// unclean leader election or a broker's lost disk truncated the
// partition; the embedded log lowers such offsets at Open) must not make
// the resolver skip the intents logged after the loss, which take the
// lost offsets again: every key written after it gets its event, and an
// error is logged. Before, the reader was placed at the committed offset:
// it failed out of range, the partition restarted at once, over and over,
// until new intents reached that offset, and then the intents below it
// were never resolved (acknowledged writes without an event).
func TestCommittedBeyondLogEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "trunc")
	env.write(ctx, t, "a", 1, "v")
	env.write(ctx, t, "b", 2, "v")
	// The group had read up to 10 before the log lost [2, 10).
	log := newPastEndCommits(env.log)
	if err := log.Commit(ctx, "g", intent.Topic(env.tb.Name), map[int32]int64{0: 10}); err != nil {
		t.Fatal(err)
	}
	// Intents logged after the loss: some before the resolver starts
	// (where the log lost its tail is not known on Kafka), some after.
	const n = 12
	for i := range n / 2 {
		env.write(ctx, t, fmt.Sprintf("k%02d", i), uint64(10+i), "v")
	}
	logger, logs := testLogger()
	run := start(ctx, New(log, env.st, env.bus, testConfig(logger, nil)), env.tb)
	var last map[string]int
	defer func() { t.Logf("on the bus: %v", last) }()
	// The rest once the resolver found the offset beyond the end: written
	// before (a slow start), they would reach the committed offset first,
	// and a truncation that new intents have written past cannot be told
	// without leader epochs, which the embedded log has none of (on Kafka
	// they find it: TestStartDivergedBelowCommitted; DESIGN.md, "Retention
	// gaps").
	waitUntil(ctx, t, "the committed offset found beyond the end", func() bool {
		return strings.Contains(logs.String(), "beyond the intent log's end")
	})
	for i := n / 2; i < n; i++ {
		env.write(ctx, t, fmt.Sprintf("k%02d", i), uint64(10+i), "v")
	}
	waitUntil(ctx, t, "every key written after the loss published", func() bool {
		got := onBus(ctx, t, env)
		last = got
		for i := range n {
			if got[fmt.Sprintf("k%02d", i)] == 0 {
				return false
			}
		}
		return true
	})
	run.stop(t)
	for k, c := range onBus(ctx, t, env) {
		if c != 1 {
			t.Errorf("%d events of %s, want 1", c, k)
		}
	}
	if !strings.Contains(logs.String(), "beyond the intent log's end") {
		t.Errorf("no error logged for the committed offset beyond the end:\n%s", logs)
	}
}

// pastEndCommits is a log that takes a committed offset beyond its
// partition's end, as a Kafka broker does (the embedded log refuses one):
// the state of a group whose log lost its tail after it committed. Such
// an offset is kept here, and answered by Committed until a commit within
// the end replaces it.
type pastEndCommits struct {
	Log
	mu   sync.Mutex
	past map[[2]string]map[int32]int64 // by group, topic
}

func newPastEndCommits(l Log) *pastEndCommits {
	return &pastEndCommits{Log: l, past: map[[2]string]map[int32]int64{}}
}

func (l *pastEndCommits) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	within, past := map[int32]int64{}, map[int32]int64{}
	for p, o := range offsets {
		_, end, err := l.Bounds(ctx, topic, p)
		if err != nil {
			return err
		}
		if o > end {
			past[p] = o
		} else {
			within[p] = o
		}
	}
	if len(within) > 0 {
		if err := l.Log.Commit(ctx, group, topic, within); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{group, topic}
	if l.past[k] == nil {
		l.past[k] = map[int32]int64{}
	}
	for p := range within {
		delete(l.past[k], p)
	}
	maps.Copy(l.past[k], past)
	return nil
}

func (l *pastEndCommits) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	offs, err := l.Log.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.Copy(offs, l.past[[2]string{group, topic}])
	return offs, nil
}
