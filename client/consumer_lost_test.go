package client_test

import (
	"context"
	"errors"
	"fmt"
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

// ackScripted is a scripted event service whose Ack answers with ack.
type ackScripted struct {
	*scripted
	ack func(*wailv1.AckRequest) (*wailv1.AckResponse, error)

	mu    sync.Mutex
	acked []string
}

func (s *ackScripted) Ack(_ context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	s.mu.Lock()
	for _, a := range req.Msg.Acks {
		s.acked = append(s.acked, fmt.Sprintf("p%d e%d n%d", a.Partition, a.Epoch, a.Next))
	}
	s.mu.Unlock()
	resp, err := s.ack(req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (s *ackScripted) serve(t *testing.T) wailv1connect.EventServiceClient {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewEventServiceHandler(s))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return wailv1connect.NewEventServiceClient(srv.Client(), srv.URL)
}

// groupEvent is an event of partition p at epoch, offset off, of key
// "k<p>" at version v (its value says the epoch).
func groupEvent(p int32, epoch uint64, off int64, v uint64) *wailv1.ConsumeResponse {
	return &wailv1.ConsumeResponse{Event: &wailv1.ChangeEvent{Table: "t", Key: fmt.Appendf(nil, "k%d", p), Version: v, Value: fmt.Appendf(nil, "e%d", epoch)},
		Partition: p, Offset: off, Epoch: epoch, Next: off + 1}
}

// TestConsumerStopsOnLostAssignment: a member whose acknowledgement says
// it lost what it was delivering (its lease expired, its stream broke,
// the partition moved on) must not go on handing out the events of that
// assignment that were already on their way to it: the next owner got
// them again from the committed offset, and may have applied a key's
// newer events already. Before, Next returned them one after the other
// (each Ack refused), so the member applied a key's older versions after
// the next owner applied newer ones. Kafka's consumer does the same: a
// failed commit of a lost generation drops what it fetched of it.
func TestConsumerStopsOnLostAssignment(t *testing.T) {
	t.Parallel()
	notMember := func(*wailv1.AckRequest) (*wailv1.AckResponse, error) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(`not a member of the group: "m" is not a member (it left or its lease expired): join again`))
	}
	for _, tc := range []struct {
		name string
		// the member's streams: the first has events the client got
		// before it learnt of the loss
		streams []scriptedStream[wailv1.ConsumeResponse]
		ack     func(*wailv1.AckRequest) (*wailv1.AckResponse, error)
		// want: the versions (and epochs) Next returns after the first
		// event was acknowledged
		want []string
	}{{
		// The server ended the member (its lease expired) while the
		// events it sent before were still in the client's buffers (the
		// stream's end behind them): "not a member". The member joins
		// again and gets the events again, under a new epoch.
		name: "not a member",
		streams: []scriptedStream[wailv1.ConsumeResponse]{
			{msgs: []*wailv1.ConsumeResponse{{}, {Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 1}}},
				groupEvent(0, 1, 0, 1), groupEvent(0, 1, 1, 2), groupEvent(0, 1, 2, 3)}, hold: true},
			{msgs: []*wailv1.ConsumeResponse{{}, {Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 5, Offset: 1}}},
				groupEvent(0, 5, 1, 2), groupEvent(0, 5, 2, 3)}, hold: true},
		},
		ack:  notMember,
		want: []string{"v2 e5", "v3 e5"}, // from the second stream
	}, {
		// The partition moved to another member while this one still
		// had its events on the way (refused per partition); another
		// partition of the stream goes on.
		name: "partition moved",
		streams: []scriptedStream[wailv1.ConsumeResponse]{
			{msgs: []*wailv1.ConsumeResponse{{}, {Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 1}, {Partition: 1, Epoch: 2}}},
				groupEvent(0, 1, 0, 1), groupEvent(0, 1, 1, 2), groupEvent(1, 2, 0, 100), groupEvent(0, 1, 2, 3),
				groupEvent(1, 2, 1, 101)}, hold: true},
		},
		ack: func(r *wailv1.AckRequest) (*wailv1.AckResponse, error) {
			resp := &wailv1.AckResponse{}
			for _, a := range r.Acks {
				if a.Partition == 0 && a.Epoch == 1 {
					resp.Refused = append(resp.Refused, &wailv1.AckRefused{Partition: 0,
						Reason: "partition not owned by this member: partition 0 epoch 1 (it moved to another member: its unacknowledged events go there)"})
				}
			}
			return resp, nil
		},
		want: []string{"v100 e2", "v101 e2"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &ackScripted{scripted: &scripted{grps: tc.streams}, ack: tc.ack}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", Group: "g", Member: "m",
				Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			first, err := c.Next(ctx)
			if err != nil || first.Event.Version != 1 {
				t.Fatalf("first event: %v, %v", first.Event, err)
			}
			// Let the rest of the first stream reach the client's buffers.
			time.Sleep(50 * time.Millisecond)
			if err := c.Ack(ctx, first); !errors.Is(err, client.ErrAckRefused) {
				t.Fatalf("Ack of the lost assignment: %v, want %v", err, client.ErrAckRefused)
			}
			var got []string
			for range tc.want {
				nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
				m, err := c.Next(nctx)
				ncancel()
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, fmt.Sprintf("v%d %s", m.Event.Version, m.Event.Value))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("after the refused acknowledgement Next returned %q, want %v: events of the lost assignment "+
					"were handed out (the next owner gets them again, and may have applied newer ones)", got, tc.want)
			}
		})
	}
}
