package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// snapJoiner sends what api.EventService.Consume sends to a member that
// took a group's snapshot and then joined without being granted a
// partition (more members than partitions): Started (Send(nil)), the
// snapshot rows, then the join (an empty message); then the server restarts
// (unavailable). The second stream is a plain member stream.
type snapJoiner struct {
	wailv1connect.UnimplementedEventServiceHandler
	calls atomic.Int32
}

func (d *snapJoiner) Consume(_ context.Context, _ *connect.Request[wailv1.ConsumeRequest], s *connect.ServerStream[wailv1.ConsumeResponse]) error {
	if d.calls.Add(1) > 1 {
		if err := s.Send(&wailv1.ConsumeResponse{Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 2}}}); err != nil {
			return err
		}
		return s.Send(&wailv1.ConsumeResponse{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 2}, Epoch: 2, Next: 1})
	}
	if err := s.Send(nil); err != nil { // Started
		return err
	}
	row := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1, Value: []byte("v")}
	if err := s.Send(&wailv1.ConsumeResponse{Event: row, Snapshot: true}); err != nil {
		return err
	}
	// the snapshot's end is committed, the member joined
	if err := s.Send(&wailv1.ConsumeResponse{}); err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond)
	return connect.NewError(connect.CodeUnavailable, errors.New("server restarting"))
}

// TestConsumerSnapshotThenJoinNoPartition: a member that took its
// group's snapshot and joined without a partition (more members than
// partitions) learns from the join that the snapshot is over: a stream
// lost after it is reconnected, not ErrSnapshotInterrupted (which tells
// the caller to discard its read model, although no snapshot would come
// again). The server sent the join as Send(nil), which reaches no client.
func TestConsumerSnapshotThenJoinNoPartition(t *testing.T) {
	t.Parallel()
	d := &snapJoiner{}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewEventServiceHandler(d))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL), client.ConsumerConfig{
		Table: "t", Group: "g", Member: "m", Start: "snapshot",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.Next(ctx); err != nil || !m.Snapshot {
		t.Fatalf("first: %v %v", m, err)
	}
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("after a completed (committed) snapshot and a join, a server restart: %v; want a reconnection", err)
	}
	if m.Event.GetVersion() != 2 {
		t.Fatalf("after the reconnection: %v, want version 2", m.Event)
	}
}
