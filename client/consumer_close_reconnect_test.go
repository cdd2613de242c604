package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestConsumerCloseDoesNotReconnect: Close during a Next that waits for a
// message ends the stream (connect reports it canceled), and Next returns
// ErrConsumerClosed without an attempt to reconnect: OnReconnect is not
// called.
func TestConsumerCloseDoesNotReconnect(t *testing.T) {
	t.Parallel()
	s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{{msgs: []*wailv1.SubscribeResponse{{}}, hold: true}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var attempts atomic.Int32
	c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond,
			OnReconnect: func(error, int) { attempts.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Next(ctx); done <- err }()
	time.Sleep(100 * time.Millisecond) // Next waits in the stream's Receive
	c.Close()
	if err := <-done; !errors.Is(err, client.ErrConsumerClosed) {
		t.Fatalf("Next after Close: %v, want ErrConsumerClosed", err)
	}
	if n := attempts.Load(); n != 0 {
		t.Fatalf("%d reconnection attempts after Close, want none", n)
	}
}
