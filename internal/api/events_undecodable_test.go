package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestConsumeUndecodableTail: a member that acknowledges every event it
// was sent keeps its lease, also when the partition's last record is not
// an event it can decode (a foreign producer on Kafka; Subscribe skips
// such records, Consume too): the last event's next passes it, and a read
// of only such records waits for no acknowledgement. They counted as
// delivered and unacknowledged, so the lease expired, the partition
// moved, and the next owner met them again.
func TestConsumeUndecodableTail(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const lease = 500 * time.Millisecond
	log, bus, c, _ := consumeWorld(t, lease)
	if err := bus.Publish(ctx, "t", []intent.Event{{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, eventbus.Topic("t"), []*intentlog.Record{{Key: []byte("k"), Value: []byte{0xff}}}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := c.Consume(sctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: "m", Start: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for s.Receive() {
		m := s.Msg()
		if m.Event == nil {
			continue
		}
		if m.Next != 2 {
			t.Fatalf("event v%d offset %d next %d; want next 2 (past the record that is not an event)", m.Event.Version, m.Offset, m.Next)
		}
		r, err := c.Ack(sctx, connect.NewRequest(&wailv1.AckRequest{Table: "t", Group: "g", Member: "m",
			Acks: []*wailv1.PartitionAck{{Partition: 0, Epoch: m.Epoch, Next: m.Next}}}))
		if err != nil || len(r.Msg.Refused) > 0 {
			t.Fatalf("ack: %v %v", r, err)
		}
		break
	}
	// Then a message of records that are not events alone.
	if err := log.Append(ctx, eventbus.Topic("t"), []*intentlog.Record{{Key: []byte("k"), Value: []byte{0xfe}}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for s.Receive() {
		}
		done <- s.Err()
	}()
	select {
	case err := <-done:
		t.Fatalf("the member acknowledged every event it was sent, yet its stream ended after %s: %v", 4*lease, err)
	case <-time.After(4 * lease):
	}
}
