package kafka

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTxnIDCheckAsksTheCoordinator: brokers apply the cluster's metadata
// each at its own pace. A topic deleted and created again just before a
// transaction's offsets were staged (TxnOffsetCommit by name, v5) is the
// new one on the group coordinator, which took the offsets for it, while
// another broker, a moment behind, still lists the old id: a check asked
// of that broker passed, and the old topic's offset was committed on the
// new topic. The check asks the coordinator, whose metadata is at least
// as new as what took the offsets.
func TestTxnIDCheckAsksTheCoordinator(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), func(o *Options) {
		o.ExtraClientOpts = []kgo.Opt{kgo.MaxVersions(kversion.V4_0_0())} // TxnOffsetCommit v5: by name
	})
	ctx := testCtx(t, time.Minute)
	in, out := topicName("lag-in"), topicName("lag-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A group whose coordinator is node 0: node ids from 0 up are a
	// broker's (-1: any).
	group := "g-" + in
	for i := 0; c.CoordinatorFor(group) != 0; i++ {
		group = fmt.Sprintf("g%d-%s", i, in)
	}
	// The brokers but the coordinator lag: they still list the old id.
	var old intentlog.TopicID
	var lagging atomic.Bool
	var staleAnswers atomic.Int32
	coordinator := c.CoordinatorFor(group)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		if !lagging.Load() || c.CurrentNode() == coordinator || len(r.Topics) != 1 || r.Topics[0].Topic == nil || *r.Topics[0].Topic != in {
			return nil, nil, false
		}
		staleAnswers.Add(1)
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = r.Version
		for i, addr := range c.ListenAddrs() {
			host, port := splitHostPort(t, addr)
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port = int32(i), host, port
			resp.Brokers = append(resp.Brokers, b)
		}
		resp.ControllerID = 0
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.TopicID = kmsg.StringPtr(in), old
		sp := kmsg.NewMetadataResponseTopicPartition()
		leader := c.LeaderFor(in, 0)
		sp.Partition, sp.Leader, sp.Replicas, sp.ISR = 0, leader, []int32{leader}, []int32{leader}
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	other := openLog(t, c.ListenAddrs(), nil)
	rec := map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("event")}}}
	for try := range 4 { // a check asked of any broker passes about two times in three
		a := &assignments{owned: map[int32]bool{}}
		m, err := l.Join(MemberOptions{Group: group, InstanceID: "one", Topics: []string{in},
			OnAssigned: a.assigned, OnRevoked: a.revoked, SessionTimeout: 6 * time.Second, TransactionTimeout: 4 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the partition assigned", func() bool { return a.count() == 1 }) // its id pinned
		old = createAgain(ctx, t, other, in, 1)
		lagging.Store(true)
		err = m.Transact(ctx, 0, rec, map[string]map[int32]int64{in: {0: 3}})
		lagging.Store(false)
		_ = m.Close(ctx)
		if !errors.Is(err, ErrTopicReplaced) || !errors.Is(err, ErrFenced) {
			t.Fatalf("try %d: transaction with the old topic's offset, the topic created again before its stage, other brokers lagging: %v; "+
				"want ErrTopicReplaced, ErrFenced", try, err)
		}
		got, err := other.Committed(ctx, group, in)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := got[0]; ok {
			t.Fatalf("try %d: the group's offset of the new topic is %d, committed from the old topic's; want none", try, o)
		}
	}
	t.Logf("%d metadata answers of lagging brokers", staleAnswers.Load())
}
