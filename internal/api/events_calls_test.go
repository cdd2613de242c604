package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
)

// groupCalls is Events whose group calls answer what the test sets and
// record what they were asked.
type groupCalls struct {
	Events
	err     error
	acked   []group.Ack
	refused map[int32]error
	names   []string
	parts   []group.PartitionState
	asked   []string
	joined  chan struct{} // JoinGroup waits for its context, then fails with err
}

func (g *groupCalls) AckGroup(_ context.Context, table, name, member string, acks []group.Ack) (map[int32]error, error) {
	g.asked = append(g.asked, fmt.Sprintf("ack %s %s %s", table, name, member))
	g.acked = acks
	return g.refused, g.err
}

func (g *groupCalls) ListGroups(_ context.Context, table string) ([]string, error) {
	g.asked = append(g.asked, "list "+table)
	return g.names, g.err
}

func (g *groupCalls) DescribeGroup(_ context.Context, table, name string) (eventbus.GroupDescription, error) {
	g.asked = append(g.asked, fmt.Sprintf("describe %s %s", table, name))
	return eventbus.GroupDescription{Partitions: g.parts}, g.err
}

func (g *groupCalls) ResetGroup(_ context.Context, table, name, to string) ([]group.PartitionState, error) {
	g.asked = append(g.asked, fmt.Sprintf("reset %s %s %s", table, name, to))
	return g.parts, g.err
}

func (g *groupCalls) JoinGroup(ctx context.Context, _, _, _, _ string, _ eventbus.GroupSnapshot) (*group.Session, error) {
	close(g.joined)
	<-ctx.Done()
	return nil, g.err
}

// serveEventService serves an EventService on e and returns a client of
// it and the service (Close: the server's shutdown).
func serveEventService(t *testing.T, e Events, opts ...connect.HandlerOption) (wailv1connect.EventServiceClient, *EventService) {
	t.Helper()
	svc := NewEventService(e)
	path, h := wailv1connect.NewEventServiceHandler(svc, opts...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { svc.Close(); srv.Close() })
	return wailv1connect.NewEventServiceClient(srv.Client(), srv.URL), svc
}

// TestEventGroupCalls: Ack, ListGroups, DescribeGroup and ResetGroup hand
// the bus what the client asked and the client what the bus answered
// (acknowledgements refused with their reason; partitions with their lag
// and, when unacknowledged events wait, for how long), and the bus's
// errors with their codes.
func TestEventGroupCalls(t *testing.T) {
	t.Parallel()
	waiting := time.Now().Add(-time.Hour)
	parts := []group.PartitionState{
		{Partition: 0, Committed: -1, End: 7},                                                        // never committed: all of it is lag
		{Partition: 1, Committed: 5, End: 9, Owner: "m", Epoch: 2, Unacked: waiting, Revoking: true}, // an hour unacknowledged, draining
	}
	g := &groupCalls{refused: map[int32]error{1: errors.New("epoch 1 is over")}, names: []string{"a", "b"}, parts: parts}
	c, _ := serveEventService(t, g)
	ctx := t.Context()

	ack, err := c.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: "t", Group: "g", Member: "m",
		Acks: []*wailv1.PartitionAck{{Partition: 0, Epoch: 3, Next: 4}, {Partition: 1, Epoch: 1, Next: 2}}}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.acked) != fmt.Sprint([]group.Ack{{Partition: 0, Epoch: 3, Next: 4}, {Partition: 1, Epoch: 1, Next: 2}}) {
		t.Errorf("the bus got acks %v", g.acked)
	}
	if r := ack.Msg.Refused; len(r) != 1 || r[0].Partition != 1 || r[0].Reason != "epoch 1 is over" {
		t.Errorf("refused %v, want partition 1's reason", r)
	}
	list, err := c.ListGroups(ctx, connect.NewRequest(&wailv1.ListGroupsRequest{Table: "t"}))
	if err != nil || strings.Join(list.Msg.Groups, ",") != "a,b" {
		t.Errorf("groups %v, %v", list, err)
	}
	check := func(call string, got []*wailv1.GroupPartition) {
		t.Helper()
		if len(got) != 2 || got[0].Lag != 7 || got[0].Committed != -1 || got[0].UnackedMs != 0 || got[0].Revoking ||
			got[1].Lag != 4 || got[1].Owner != "m" || got[1].Epoch != 2 || got[1].UnackedMs < time.Hour.Milliseconds() || !got[1].Revoking {
			t.Errorf("%s: partitions %v", call, got)
		}
	}
	d, err := c.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "t", Group: "g"}))
	if err != nil {
		t.Fatal(err)
	}
	check("describe", d.Msg.Partitions)
	r, err := c.ResetGroup(ctx, connect.NewRequest(&wailv1.ResetGroupRequest{Table: "t", Group: "g", To: "latest"}))
	if err != nil {
		t.Fatal(err)
	}
	check("reset", r.Msg.Partitions)
	if got, want := strings.Join(g.asked, "; "), "ack t g m; list t; describe t g; reset t g latest"; got != want {
		t.Errorf("the bus was asked %q, want %q", got, want)
	}

	for _, tc := range []struct {
		err  error
		code connect.Code
	}{
		{fmt.Errorf("table t: %w", eventbus.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("group g: %w", group.ErrMembers), connect.CodeFailedPrecondition},
		{errors.New("broker gone"), connect.CodeUnavailable},
	} {
		g.err = tc.err
		_, ackErr := c.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: "t", Group: "g", Member: "m"}))
		_, listErr := c.ListGroups(ctx, connect.NewRequest(&wailv1.ListGroupsRequest{Table: "t"}))
		_, descErr := c.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "t", Group: "g"}))
		_, resetErr := c.ResetGroup(ctx, connect.NewRequest(&wailv1.ResetGroupRequest{Table: "t", Group: "g", To: "latest"}))
		for i, err := range []error{ackErr, listErr, descErr, resetErr} {
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("call %d, bus error %v: %v, want %v", i, tc.err, err, tc.code)
			}
		}
	}
}

// TestConsumeClientGone: a client that goes away while its member joins
// ends the handler with its cancellation, not with the bus's error as
// Unavailable (which would count as the log failing).
func TestConsumeClientGone(t *testing.T) {
	t.Parallel()
	g := &groupCalls{err: errors.New("join abandoned"), joined: make(chan struct{})}
	ended := make(chan error, 1)
	c, _ := serveEventService(t, g, connect.WithInterceptors(endInterceptor(ended)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		s, err := c.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: "m"}))
		if err == nil {
			for s.Receive() {
			}
			s.Close()
		}
	}()
	select {
	case <-g.joined:
	case <-t.Context().Done():
		t.Fatal("the member never joined")
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) || connect.CodeOf(err) == connect.CodeUnavailable {
			t.Fatalf("the handler ended with %v, want the client's cancellation", err)
		}
	case <-t.Context().Done():
		t.Fatal("the handler did not end")
	}
}

// endInterceptor hands ended what each streaming handler returned.
type endInterceptor chan error

func (e endInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (e endInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (e endInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		e <- err
		return err
	}
}
