package client_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestConsumerUnauthenticatedAfterSteadyStream: a stream that stayed open
// Reconnect.SteadyAfter counts as up though it delivered no event (an idle
// table's); when the server ends it unauthenticated (its JWT expired), the
// consumer reconnects once with the token as it is now, as it does on a
// stream that delivered. A consumer that had reconnected before (a server
// restart) failed for good at the expiry: the attempts still counted from
// that reconnection, and unauthenticated is retried only on the first.
// A stream refused unauthenticated again at once still fails Next.
func TestConsumerUnauthenticatedAfterSteadyStream(t *testing.T) {
	t.Parallel()
	ev := func(k string) *wailv1.SubscribeResponse {
		return &wailv1.SubscribeResponse{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte(k), Version: 1}, Cursor: k}
	}
	const idle = 200 * time.Millisecond
	for _, tc := range []struct {
		name    string
		streams []scriptedStream[wailv1.SubscribeResponse]
		want    string // the second event's key; "": Next fails unauthenticated
	}{
		{"idle stream after a reconnection", []scriptedStream[wailv1.SubscribeResponse]{
			{msgs: []*wailv1.SubscribeResponse{ev("a")}, code: connect.CodeUnavailable},            // a restart
			{msgs: []*wailv1.SubscribeResponse{{}}, last: idle, code: connect.CodeUnauthenticated}, // open (its start), idle, then the JWT expires
			{msgs: []*wailv1.SubscribeResponse{ev("b")}, hold: true},
		}, "b"},
		{"refused again at once", []scriptedStream[wailv1.SubscribeResponse]{
			{msgs: []*wailv1.SubscribeResponse{ev("a")}, last: idle, code: connect.CodeUnauthenticated},
			{code: connect.CodeUnauthenticated},
			{msgs: []*wailv1.SubscribeResponse{ev("b")}, hold: true},
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &scripted{subs: tc.streams}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", From: "latest",
				Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond, SteadyAfter: idle / 4}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Next(ctx); err != nil {
				t.Fatal(err)
			}
			m, err := c.Next(ctx)
			if tc.want == "" {
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Fatalf("Next: %v, %v; want unauthenticated (streams opened: %d)", m, err, len(s.opened()))
				}
				return
			}
			if err != nil || string(m.Event.GetKey()) != tc.want {
				t.Fatalf("Next: %v, %v; want event %s (streams opened: %d)", m, err, tc.want, len(s.opened()))
			}
		})
	}
}
