package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendLimit: what one append to a partition is sure to get through
// in one record batch is the record limit: the topic's max.message.bytes
// (or the producer's limit) less the batch around the records.
func TestAppendLimit(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := openLog(t, c.ListenAddrs(), func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
	})
	ctx := testCtx(t, 30*time.Second)
	if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := l.AppendLimit(ctx, "t"); err != nil || got != 100000-brokerBatchOverhead {
		t.Fatalf("AppendLimit = %d, %v; want %d", got, err, 100000-brokerBatchOverhead)
	}
}
