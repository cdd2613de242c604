package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestConsumerLostEpochsOutOfOrder: a partition granted to the member
// twice on one stream (epochs 1, then 2) and lost at epoch 2 is lost at
// epoch 1 too. An application that acknowledges out of order (a later
// event's refusal, then an earlier one's) made the consumer remember
// only the last epoch it was told of (1), and hand out the events of
// epoch 2 still on their way, which the next owner gets again.
func TestConsumerLostEpochsOutOfOrder(t *testing.T) {
	t.Parallel()
	s := &ackScripted{scripted: &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{}, {Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 1}}},
			groupEvent(0, 1, 0, 1),
			{Revoked: []int32{0}}, {Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 2, Offset: 1}}},
			groupEvent(0, 2, 1, 2), groupEvent(0, 2, 2, 3), groupEvent(0, 2, 3, 4),
			{Granted: []*wailv1.PartitionGrant{{Partition: 1, Epoch: 7}}}, groupEvent(1, 7, 0, 100)}, hold: true},
	}}, ack: func(r *wailv1.AckRequest) (*wailv1.AckResponse, error) {
		resp := &wailv1.AckResponse{}
		for _, a := range r.Acks {
			if a.Partition == 0 {
				resp.Refused = append(resp.Refused, &wailv1.AckRefused{Partition: 0, Reason: "partition not owned by this member (test)"})
			}
		}
		return resp, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", Group: "g", Member: "m",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ms []client.Message
	for range 2 {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if ms[0].Event.Version != 1 || ms[1].Event.Version != 2 {
		t.Fatalf("first events: v%d, v%d", ms[0].Event.Version, ms[1].Event.Version)
	}
	time.Sleep(50 * time.Millisecond)                  // the rest of the stream reaches the client's buffers
	for _, m := range []client.Message{ms[1], ms[0]} { // out of order
		if err := c.Ack(ctx, m); !errors.Is(err, client.ErrAckRefused) {
			t.Fatalf("Ack of v%d: %v, want %v", m.Event.Version, err, client.ErrAckRefused)
		}
	}
	nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
	defer ncancel()
	m, err := c.Next(nctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("v%d %s", m.Event.Version, m.Event.Value); got != "v100 e7" {
		t.Fatalf("after partition 0 was lost at epoch 2, Next returned %s, want v100 e7 (of partition 1)", got)
	}
}
