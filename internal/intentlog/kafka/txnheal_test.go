package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTransactAfterFailedAbort: a transaction whose abort fails leaves
// the producer inside it; the next Transact ends it first instead of
// failing ("already in a transaction"), which would make the resolver
// leave and rejoin its group.
func TestTransactAfterFailedAbort(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t, 60*time.Second)
	l := openLog(t, c.ListenAddrs(), func(o *Options) { o.MaxMessageBytes = 256 << 10 })
	in, out := topicName("heal-in"), topicName("heal-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(ctx) })
	waitFor(t, "the member to own the partition", func() bool { return a.count() == 1 })
	rec := func(v string, size int) *intentlog.Record {
		return &intentlog.Record{Key: []byte(v), Value: make([]byte, size)}
	}

	// The abort's EndTxn fails once, after a produce failed (a record over
	// the limit).
	var endTxns int
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		endTxns++
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.Version = req.GetVersion()
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	err = m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {rec("a", 1), rec("huge", 300<<10)}},
		map[string]map[int32]int64{in: {0: 5}})
	if err == nil || endTxns != 1 {
		t.Fatalf("transaction with a record over the limit and a failing abort: %v (%d EndTxn), want an error after one EndTxn", err, endTxns)
	}

	// The next transaction goes through, and commits its offsets.
	if err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {rec("b", 1)}},
		map[string]map[int32]int64{in: {0: 7}}); err != nil {
		if strings.Contains(err.Error(), "already in a transaction") {
			t.Fatalf("the failed abort left the producer in its transaction: %v", err)
		}
		t.Fatal(err)
	}
	got, err := l.Committed(ctx, "g-"+in, in)
	if err != nil || got[0] != 7 {
		t.Fatalf("committed %v, %v; want 7", got, err)
	}
}
