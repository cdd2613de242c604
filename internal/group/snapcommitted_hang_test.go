package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// hungRegistry is a log whose reads of the group registry never return
// records (its partition's leader gone, a broker that does not answer):
// they wait for their context.
type hungRegistry struct {
	intentlog.Log
}

func (l *hungRegistry) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	r, err := l.Log.NewReader(topic, p, offset)
	if err != nil || topic != registryTopic {
		return r, err
	}
	return hungReader{r}, nil
}

type hungReader struct{ intentlog.Reader }

func (hungReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestCommittedSnapshotHungRegistry: the join of a member that asks
// whose snapshot the positions are reads the group registry after the
// member joined (its partitions are granted to it, and nothing is sent
// to it before the join): a registry read that hangs must not keep them
// for good. It fails within the group lease (the join fails with the log
// failing, which the client retries), and says so.
func TestCommittedSnapshotHungRegistry(t *testing.T) {
	t.Parallel()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	tb.Created = 42
	const lease = 300 * time.Millisecond
	W := New(base, lease)
	defer W.Close()
	takeAcked(t, W, tb, nil) // the registry has the record
	G := New(&hungRegistry{Log: base}, lease)
	defer G.Close()
	done := make(chan error, 1)
	go func() {
		_, err := G.CommittedSnapshot(context.Background(), tb, "g")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CommittedSnapshot on a hung registry: %v, want the read's deadline", err)
		}
	case <-time.After(10 * lease):
		t.Fatalf("CommittedSnapshot on a hung registry still waits after %s (group lease %s)", 10*lease, lease)
	}
}
