package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// snapEnder is a server whose member stream sends two snapshot rows and
// snapshot_end (id 7), then holds; its Ack of a snapshot's end fails
// (unavailable) fails times first.
type snapEnder struct {
	wailv1connect.UnimplementedEventServiceHandler
	mu    sync.Mutex
	fails int
	acks  []*wailv1.AckRequest
}

func (s *snapEnder) Consume(ctx context.Context, req *connect.Request[wailv1.ConsumeRequest], st *connect.ServerStream[wailv1.ConsumeResponse]) error {
	if !req.Msg.AckSnapshot {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("the client did not ask to acknowledge the snapshot"))
	}
	for _, m := range []*wailv1.ConsumeResponse{
		{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("a"), Version: 1}, Snapshot: true},
		{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("b"), Version: 1}, Snapshot: true},
		{SnapshotEnd: true, SnapshotId: 7},
	} {
		if err := st.Send(m); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

func (s *snapEnder) Ack(_ context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, req.Msg)
	if req.Msg.SnapshotEnd && s.fails > 0 {
		s.fails--
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("restarting"))
	}
	return connect.NewResponse(&wailv1.AckResponse{}), nil
}

func (s *snapEnder) ends() (ids []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.acks {
		if a.SnapshotEnd {
			ids = append(ids, a.SnapshotId)
		}
	}
	return ids
}

// TestConsumerSnapshotEndAck: the snapshot's end is acknowledged once,
// with its id, when the last row is acknowledged after snapshot_end came
// (the rows acknowledged out of order: the later one covers the earlier),
// or when snapshot_end comes after every row was acknowledged;
// a short outage of the Ack is retried; an outage longer than the retries
// fails the Ack, and acknowledging the row again sends it again.
func TestConsumerSnapshotEndAck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fails int
		want  []uint64 // the end's acknowledgements the server got
		again bool     // the first Ack fails: acknowledge the row again
		// ackFirst: the rows are acknowledged before snapshot_end is read
		ackFirst bool
	}{
		{"at once", 0, []uint64{7}, false, false},
		{"rows acknowledged first", 0, []uint64{7}, false, true},
		{"rows acknowledged first, the later one first", 0, []uint64{7}, false, true},
		{"a short outage", 2, []uint64{7, 7, 7}, false, false},
		{"a long outage", 4, []uint64{7, 7, 7, 7, 7}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &snapEnder{fails: tc.fails}
			mux := http.NewServeMux()
			mux.Handle(wailv1connect.NewEventServiceHandler(s))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(srv.Client(), srv.URL),
				client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Start: "snapshot"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ackFirst { // both rows before snapshot_end is read: Next sends it
				first, second := a, b
				if tc.name == "rows acknowledged first, the later one first" { // b covers a; a's Ack keeps that
					first, second = b, a
				}
				if err := c.Ack(ctx, first); err != nil {
					t.Fatal(err)
				}
				if err := c.Ack(ctx, second); err != nil {
					t.Fatal(err)
				}
			}
			// snapshot_end is read by the Next after the last row, which
			// then waits (the join follows once the end is committed).
			go func() { _, _ = c.Next(ctx) }()
			time.Sleep(100 * time.Millisecond)
			if !tc.ackFirst {
				if got := s.ends(); len(got) != 0 {
					t.Fatalf("the end was acknowledged (%v) before any row was", got)
				}
				if err := c.Ack(ctx, b); err != nil { // covers a
					if !tc.again {
						t.Fatal(err)
					}
					if err := c.Ack(ctx, b); err != nil {
						t.Fatalf("the row acknowledged again: %v", err)
					}
				} else if tc.again {
					t.Fatal("the Ack succeeded through an outage longer than its retries")
				}
				if err := c.Ack(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(s.ends()) < len(tc.want) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := s.ends(); len(got) != len(tc.want) || got[len(got)-1] != 7 {
				t.Fatalf("the server got end acknowledgements %v; want %v", got, tc.want)
			}
		})
	}
}
