package kafka

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTransactIDCheckStallSaysSo: a transaction whose records the broker
// acknowledged but whose topic id check (metadata of the offsets' topic,
// asked beside the produce) is not answered within half the transaction
// timeout is aborted to be tried again, saying that the metadata did not
// come. It said the records were "not acknowledged" and to check the
// partitions' in-sync replicas, which were fine.
func TestTransactIDCheckStallSaysSo(t *testing.T) {
	c, l, ctx, in, out, m := fakeMember(t, "idstall")
	var armed atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstall)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		if !armed.Load() || len(r.Topics) != 1 || r.Topics[0].Topic == nil || *r.Topics[0].Topic != in {
			return nil, nil, false
		}
		c.SleepControl(func() {
			select {
			case <-release:
			case <-time.After(3 * time.Second): // past the bound (1 s)
			}
		})
		return nil, nil, false
	})
	armed.Store(true)
	time.Sleep(300 * time.Millisecond) // past MetadataMinAge: the check asks the broker
	rec := map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("v")}}}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err := m.Transact(tctx, 0, rec, map[string]map[int32]int64{in: {0: 1}})
	cancel()
	armed.Store(false)
	unstall() // the stalled answer comes (the check asks the group coordinator, on the connection it held)
	if err == nil || !IsAborted(err) || strings.Contains(err.Error(), "not acknowledged") ||
		strings.Contains(err.Error(), "in-sync replicas") || !strings.Contains(err.Error(), "records acknowledged, but not the offsets' check") || !strings.Contains(err.Error(), "topic ids") {
		t.Fatalf("transaction whose topic id check stalls: %v; want it aborted (tried again), saying the topic ids were not answered, not that the records were not acknowledged", err)
	}
	if err := m.Transact(ctx, 0, rec, map[string]map[int32]int64{in: {0: 1}}); err != nil {
		t.Fatalf("transaction once the metadata comes again: %v", err)
	}
	if got, err := l.Committed(ctx, "g-"+in, in); err != nil || got[0] != 1 {
		t.Fatalf("committed %v, %v; want 1", got, err)
	}
}
