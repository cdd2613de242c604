package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestConsumeUndecodableTail: a member that acknowledges every event
// it was sent keeps its lease, also when the partition's last record is
// not an event it can decode (Subscribe skips such records; Consume skips
// them too, but counts them as delivered and unacknowledged).
func TestConsumeUndecodableTail(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	log, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	bus := eventbus.New(log)
	if err := bus.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	const lease = 500 * time.Millisecond
	groups := eventbus.NewService(bus, func(table string) (int32, bool) { return 1, table == "t" }).WithGroups(group.New(log, lease))
	defer groups.Close()
	c, _ := serveEventService(t, groups)
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
