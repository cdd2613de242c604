package kafka

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestStartAtEpochUnknownToBroker: a reader started at a committed offset
// and its leader epoch, which the partition's leader has no record of:
// OffsetForLeaderEpoch answers UNDEFINED_EPOCH_OFFSET (end offset and
// epoch -1: its leader-epoch history lost, the epoch newer than any it
// knows). The log below the offset cannot be validated. franz-go keeps
// the offset then (with no reset offset, or nothing consumed yet): the
// reader read on from it silently, as if validated. It now fails its
// first Next with a *Truncation whose From is -1 (where the log diverges
// is not known), every Next after it too, as the Java consumer without a
// reset policy reports a LogTruncation without a divergent offset.
func TestStartAtEpochUnknownToBroker(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName("epochunknown")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for i := range 8 {
		recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := l.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	epochEnds(c, -1, -1, &asked) // UNDEFINED_EPOCH_OFFSET
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for range 2 {
		got, err := rd.Next(ctx)
		var tr *intentlog.Truncation
		if !errors.As(err, &tr) || !errors.Is(err, intentlog.ErrTruncated) || !errors.Is(err, intentlog.ErrEpochUnknown) {
			t.Fatalf("Next at offset 5 of epoch 3, which the broker does not know = %d records (from %v), %v (epoch asked %d times); "+
				"want a truncation, the epoch unknown", len(got), got, err, asked.Load())
		}
		if tr.From != -1 || tr.Read != 5 || rd.Position() != 5 {
			t.Fatalf("truncation %+v at position %d; want from -1 (not known), read 5, the position kept", tr, rd.Position())
		}
		if !strings.Contains(err.Error(), "leader epoch 3") {
			t.Fatalf("%v: does not name the epoch", err)
		}
	}
	// Without an epoch nothing is validated: it reads on.
	rd2, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	if got, err := rd2.Next(ctx); err != nil || len(got) == 0 || got[0].Offset != 5 {
		t.Fatalf("Next of a reader started without an epoch = %v, %v; want the records from 5", got, err)
	}
}
