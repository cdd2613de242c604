package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// endLostRejoinHeld is a group member's EventService: the first
// acknowledgement of a snapshot's end calls died (which stops the server)
// and every one is answered unavailable (the answer lost: the member
// cannot tell whether the server took it); the streams after the first
// open only once release is closed. It records each Consume request's
// told_snapshot_id.
type endLostRejoinHeld struct {
	wailv1connect.EventServiceClient
	died    func()
	once    sync.Once
	release chan struct{}
	mu      sync.Mutex
	told    []uint64
}

func (h *endLostRejoinHeld) Consume(ctx context.Context, req *connect.Request[wailv1.ConsumeRequest]) (*connect.ServerStreamForClient[wailv1.ConsumeResponse], error) {
	h.mu.Lock()
	h.told = append(h.told, req.Msg.ToldSnapshotId)
	n := len(h.told)
	h.mu.Unlock()
	if n > 1 {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.EventServiceClient.Consume(ctx, req)
}

func (h *endLostRejoinHeld) Ack(ctx context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	if !req.Msg.SnapshotEnd {
		return h.EventServiceClient.Ack(ctx, req)
	}
	h.once.Do(h.died)
	return nil, connect.NewError(connect.CodeUnavailable, errors.New("connection reset"))
}

func (h *endLostRejoinHeld) requests() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.told...)
}

// TestConsumerOtherSnapshotCommittedMeanwhile (real server): member a
// takes the group's snapshot and acknowledges its end, and the server
// dies before it committed it (the answer lost). The server starts
// again; member b takes the snapshot and its end is committed; the
// server restarts once more (what the group keeps of whose snapshot that
// was must survive it), a change is written, and only then does a join
// again. Its rows are not the group's (b's snapshot is, and the group
// goes on after b's end): Next fails with ErrSnapshotInterrupted. Before,
// a's join did not say whose end the group's positions were, and a went
// on with its rows kept.
func TestConsumerOtherSnapshotCommittedMeanwhile(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct := dialTable(ctx, t, srv, 2)
	put := func(k string) {
		t.Helper()
		if _, err := direct.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(k), Value: []byte(`{}`)})); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		put(k)
	}
	died := make(chan struct{})
	ha := &endLostRejoinHeld{EventServiceClient: direct.Events, release: make(chan struct{}), died: func() {
		srv.stop()
		close(died)
	}}
	a, err := client.NewConsumer(ctx, ha, client.ConsumerConfig{Table: "t", Group: "g", Member: "a", Start: "snapshot",
		Reconnect: client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	readRows := func(c *client.Consumer, who string) {
		t.Helper()
		for n := range 3 {
			m, err := c.Next(ctx)
			if err != nil || !m.Snapshot {
				t.Fatalf("member %s, snapshot row %d: %v (snapshot %v)", who, n+1, err, m.Snapshot)
			}
			if err := c.Ack(ctx, m); err != nil {
				t.Fatalf("member %s: ack: %v", who, err)
			}
		}
	}
	readRows(a, "a")
	type result struct {
		m   client.Message
		err error
	}
	after := make(chan result, 1)
	go func() {
		m, err := a.Next(ctx) // the end: its acknowledgement's answer is lost
		if err != nil && !errors.Is(err, client.ErrSnapshotInterrupted) {
			m, err = a.Next(ctx) // then it joins again (held until released)
		}
		after <- result{m, err}
	}()
	select {
	case <-died:
	case <-ctx.Done():
		t.Fatal("member a never acknowledged its snapshot's end")
	}
	srv.start()
	b, err := client.NewConsumer(ctx, direct.Events, client.ConsumerConfig{Table: "t", Group: "g", Member: "b", Start: "snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	readRows(b, "b")
	go func() { _, _ = b.Next(ctx) }() // acknowledges b's end
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		g, err := direct.Events.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "t", Group: "g"}))
		committed := err == nil && len(g.Msg.Partitions) > 0
		for _, p := range g.Msg.GetPartitions() {
			committed = committed && p.Committed >= 0
		}
		if committed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's snapshot's end was not committed: %v", err)
		}
	}
	b.Close()
	srv.stop()
	srv.start()
	put("d")
	close(ha.release)
	var r result
	select {
	case r = <-after:
	case <-ctx.Done():
		t.Fatal("member a: Next never returned")
	}
	if !errors.Is(r.err, client.ErrSnapshotInterrupted) {
		t.Fatalf("member a, joined again: %v (got %q), want ErrSnapshotInterrupted: the group's positions are b's snapshot's end, not a's",
			r.err, r.m.Event.GetKey())
	}
	if told := ha.requests(); len(told) < 2 || told[0] != 0 || told[len(told)-1] == 0 {
		t.Fatalf("told_snapshot_id of a's Consume requests: %v, want 0 then a's snapshot's end", told)
	}
}
