package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestConsumerSteadyAfter: a stream that stayed open Reconnect.SteadyAfter
// counts as up though it delivered no event: its clean end starts the
// attempts and the count of Reconnect.MaxEnds again. With a short
// SteadyAfter, members' streams that the server holds open longer than it
// and then ends never reach MaxEnds; with the default (10 s) they do.
func TestConsumerSteadyAfter(t *testing.T) {
	t.Parallel()
	const held = 300 * time.Millisecond // each stream's life after the join
	for _, tc := range []struct {
		name   string
		steady time.Duration
		ended  bool // Next fails with ErrStreamEnded
	}{
		{name: "steady after 20ms", steady: 20 * time.Millisecond},
		{name: "default", ended: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var streams []scriptedStream[wailv1.ConsumeResponse]
			for range 5 {
				streams = append(streams, scriptedStream[wailv1.ConsumeResponse]{msgs: []*wailv1.ConsumeResponse{{}}, last: held})
			}
			ev := &wailv1.ConsumeResponse{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}, Epoch: 1}
			streams = append(streams, scriptedStream[wailv1.ConsumeResponse]{msgs: []*wailv1.ConsumeResponse{{}, ev}, hold: true})
			s := &scripted{grps: streams}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var attempts []int
			c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", Group: "g", Member: "m",
				Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond, MaxEnds: 2, SteadyAfter: tc.steady,
					OnReconnect: func(_ error, attempt int) { attempts = append(attempts, attempt) }}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m, err := c.Next(ctx)
			if tc.ended {
				if !errors.Is(err, client.ErrStreamEnded) {
					t.Fatalf("streams of %s each, SteadyAfter the default: %v; want ErrStreamEnded after MaxEnds", held, err)
				}
				return
			}
			if err != nil || m.Event.GetVersion() != 1 {
				t.Fatalf("streams of %s each, SteadyAfter %s: %v, attempts %v; want the event (each stream was up)", held, tc.steady, err, attempts)
			}
			for _, a := range attempts {
				if a != 1 {
					t.Fatalf("attempts %v: a stream open past SteadyAfter did not start them again", attempts)
				}
			}
		})
	}
}

// TestConsumerSteadyAfterNegative: a negative Reconnect.SteadyAfter is
// refused, naming it.
func TestConsumerSteadyAfterNegative(t *testing.T) {
	t.Parallel()
	s := &scripted{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t",
		Reconnect: client.Reconnect{SteadyAfter: -time.Second}})
	if err == nil || !strings.Contains(err.Error(), "SteadyAfter") {
		t.Fatalf("a negative SteadyAfter: %v; want an error naming it", err)
	}
	if n := len(s.opened()); n != 0 {
		t.Fatalf("%d streams opened with a negative SteadyAfter", n)
	}
}
