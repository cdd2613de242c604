package kafka

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendTopicNotYetKnown: a broker that has not yet learned of a topic
// another process just created (Kafka spreads metadata to the brokers
// asynchronously) answers UNKNOWN_TOPIC_OR_PARTITION for a moment. The
// first Append of a process to that topic failed with ErrUnknownTopic at
// once, which the proxy answers failed_precondition ("the topic is
// missing"), and the client's Producer gives up on the write: a write to a
// table created a moment before failed for good. The topic is now asked
// again for a moment before it is called unknown.
func TestAppendTopicNotYetKnown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t, time.Minute)
	topic := topicName("not-yet")
	if err := openLog(t, c.ListenAddrs(), nil).CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	var stale atomic.Int32
	stale.Store(2) // the next two metadata answers naming the topic
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		named := false
		for _, rt := range r.Topics {
			named = named || rt.Topic != nil && *rt.Topic == topic
		}
		if !named || stale.Add(-1) < 0 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = r.Version
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
		resp.ControllerID = 0
		st := kmsg.NewMetadataResponseTopic()
		st.Topic = kmsg.StringPtr(topic)
		st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	l := openLog(t, c.ListenAddrs(), nil) // another process: nothing cached
	if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatalf("append to a topic a broker learns of a moment later: %v; want it taken", err)
	}
}
