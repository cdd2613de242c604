package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// gapper is an event service whose subscriptions report a retention gap
// of partition 0, offsets [1, 4), then send the event at 4; asked to fail
// on gaps, they fail as the server does: out_of_range with the gap as a
// detail.
type gapper struct {
	wailv1connect.UnimplementedEventServiceHandler
}

var theGap = &wailv1.RetentionGap{Partition: 0, From: 1, To: 4}

func (gapper) Subscribe(ctx context.Context, req *connect.Request[wailv1.SubscribeRequest], s *connect.ServerStream[wailv1.SubscribeResponse]) error {
	if req.Msg.FailOnGap {
		ce := connect.NewError(connect.CodeOutOfRange, errors.New(`table "t" partition 0: offsets [1, 4) were removed by retention`))
		d, err := connect.NewErrorDetail(theGap)
		if err != nil {
			return err
		}
		ce.AddDetail(d)
		return ce
	}
	if err := s.Send(&wailv1.SubscribeResponse{Gap: theGap, Cursor: "past-the-gap"}); err != nil {
		return err
	}
	ev := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 5, Value: []byte("v")}
	if err := s.Send(&wailv1.SubscribeResponse{Event: ev, Offset: 4, Cursor: "after-4"}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// Consume grants partition 0 at epoch 1, reports the gap, then sends the
// event at 4.
func (gapper) Consume(ctx context.Context, _ *connect.Request[wailv1.ConsumeRequest], s *connect.ServerStream[wailv1.ConsumeResponse]) error {
	ev := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 5, Value: []byte("v")}
	for _, m := range []*wailv1.ConsumeResponse{
		{Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 1, Offset: 1}}},
		{Partition: 0, Epoch: 1, Next: 4, Gap: theGap},
		{Event: ev, Partition: 0, Offset: 4, Epoch: 1, Next: 5},
	} {
		if err := s.Send(m); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// TestConsumerRetentionGap: a subscription hands a gap the server
// reports to OnGap, before the event past it, and its Cursor moves past
// it; with FailOnGap, NewConsumer or Next fails with a *GapError that
// says which offsets (errors.Is ErrRetentionGap, the server's
// out_of_range kept). A group member is told too, but cannot ask to
// fail (its group reads on).
func TestConsumerRetentionGap(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewEventServiceHandler(gapper{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	events := wailv1connect.NewEventServiceClient(srv.Client(), srv.URL)
	ctx := context.Background()

	var gaps []*wailv1.RetentionGap
	var cursorAtGap string
	var cons *client.Consumer
	cons, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "t", OnGap: func(g *wailv1.RetentionGap) {
		gaps = append(gaps, g)
		cursorAtGap = cons.Cursor()
	}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(ctx)
	cons.Close()
	if err != nil || m.Offset != 4 {
		t.Fatalf("Next: %v at %d, want the event at 4", err, m.Offset)
	}
	if len(gaps) != 1 || !proto.Equal(gaps[0], theGap) || cursorAtGap != "past-the-gap" {
		t.Fatalf("OnGap got %v with the cursor at %q; want %v, the cursor past it", gaps, cursorAtGap, theGap)
	}

	fail, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "t", FailOnGap: true})
	if err == nil {
		_, err = fail.Next(ctx)
		fail.Close()
	}
	var ge *client.GapError
	if !errors.As(err, &ge) || !errors.Is(err, client.ErrRetentionGap) || connect.CodeOf(err) != connect.CodeOutOfRange || !proto.Equal(ge.Gap, theGap) {
		t.Fatalf("FailOnGap: %v; want a *GapError of %v, out_of_range", err, theGap)
	}

	if _, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m", FailOnGap: true}); err == nil {
		t.Errorf("a group member asked FailOnGap and was not refused")
	}
	gaps = nil
	member, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m",
		OnGap: func(g *wailv1.RetentionGap) { gaps = append(gaps, g) }})
	if err != nil {
		t.Fatal(err)
	}
	m, err = member.Next(ctx)
	member.Close()
	if err != nil || m.Offset != 4 || len(gaps) != 1 || !proto.Equal(gaps[0], theGap) {
		t.Fatalf("group member: %v at %d, gaps %v; want the gap %v, then the event at 4", err, m.Offset, gaps, theGap)
	}
}
