package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestConsumeHandoverDrains: through the server, with two members of a
// table of two partitions. m1 holds an unacknowledged event (version 1)
// of key k; m2 joins and the balance moves k's partition to it. m2 gets
// neither the partition nor k's later event (version 2) while m1 may
// still be applying version 1; once m1 acknowledges it, m1 is told the
// partition was revoked and m2 gets it from there: version 2 only. Before
// the drain, m2 got the partition at once and delivered version 1 again
// and version 2 while m1 held version 1 (per-key order broken across the
// group). DescribeGroup shows the partition revoking meanwhile.
func TestConsumeHandoverDrains(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, bus, c, _ := consumeWorldOf(t, time.Minute, 2)
	keyIn := func(p int32) string {
		for i := 0; ; i++ {
			if k := fmt.Sprintf("k%d", i); intentlog.Partition([]byte(k), 2) == p {
				return k
			}
		}
	}
	k0, k := keyIn(0), keyIn(1)
	publish := func(key string, v uint64) {
		t.Helper()
		if err := bus.Publish(ctx, "t", []intent.Event{{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: v, Value: []byte("{}")}}); err != nil {
			t.Fatal(err)
		}
	}
	publish(k0, 1)
	publish(k, 1)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	join := func(member string) <-chan *wailv1.ConsumeResponse {
		t.Helper()
		s, err := c.Consume(sctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: member, Start: "beginning"}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out := make(chan *wailv1.ConsumeResponse, 64)
		go func() {
			defer close(out)
			for s.Receive() {
				out <- s.Msg()
			}
		}()
		if m := <-out; m == nil || m.Event != nil || m.Granted != nil {
			t.Fatalf("%s's first message %v, want its join", member, m)
		}
		return out
	}
	next := func(who string, ch <-chan *wailv1.ConsumeResponse) *wailv1.ConsumeResponse {
		t.Helper()
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("%s's stream ended", who)
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("%s got nothing", who)
			return nil
		}
	}
	m1 := join("m1")
	if g := next("m1", m1).Granted; len(g) != 2 {
		t.Fatalf("m1 granted %v, want both partitions", g)
	}
	var held *wailv1.ConsumeResponse // m1's event of k, not acknowledged
	for range 2 {
		if m := next("m1", m1); m.Event != nil && m.Partition == 1 {
			held = m
		}
	}
	if held == nil || string(held.Event.Key) != k || held.Event.Version != 1 {
		t.Fatalf("m1 holds %v, want k's version 1", held)
	}
	m2 := join("m2")
	publish(k, 2)
	select {
	case m := <-m2:
		t.Fatalf("m2 got %v while m1 holds k's version 1 unacknowledged", m)
	case m := <-m1:
		t.Fatalf("m1 got %v while its partition 1 drains", m)
	case <-time.After(300 * time.Millisecond):
	}
	d, err := c.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "t", Group: "g"}))
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Msg.Partitions; len(p) != 2 || p[1].Owner != "m1" || !p[1].Revoking || p[0].Revoking {
		t.Fatalf("described %v, want partition 1 m1's, revoking", p)
	}
	resp, err := c.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: "t", Group: "g", Member: "m1",
		Acks: []*wailv1.PartitionAck{{Partition: 1, Epoch: held.Epoch, Next: held.Next}}}))
	if err != nil || len(resp.Msg.Refused) > 0 {
		t.Fatalf("m1's ack: %v, %v", resp, err)
	}
	if r := next("m1", m1).Revoked; len(r) != 1 || r[0] != 1 {
		t.Fatalf("m1: revoked %v, want partition 1 once it acknowledged it", r)
	}
	if g := next("m2", m2).Granted; len(g) != 1 || g[0].Partition != 1 || g[0].Offset != held.Next {
		t.Fatalf("m2 granted %v, want partition 1 from %d", g, held.Next)
	}
	if m := next("m2", m2); m.Event == nil || string(m.Event.Key) != k || m.Event.Version != 2 {
		t.Fatalf("m2 got %v, want k's version 2", m)
	}
}
