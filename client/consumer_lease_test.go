package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// TestConsumerSlowHandlerPastLease: a member whose handler takes longer
// than the group lease over an event loses its partition; its Ack is
// refused, and Next gets the events again from the last committed one,
// in order, with none skipped: every event is acknowledged in the end.
func TestConsumerSlowHandlerPastLease(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, func(c *config.Config) { c.API.GroupLeaseTimeout = 300 * time.Millisecond })
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dialTable(ctx, t, srv, 1)
	const n = 6
	for i := range n {
		if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m",
		Reconnect: client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []int64
	acked := int64(-1) // the last offset acknowledged
	slow, refused := true, 0
	for acked < n-1 {
		m, err := cons.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Offset)
		if m.Offset > acked+1 {
			t.Fatalf("offset %d delivered after %d was the last acknowledged: %v", m.Offset, acked, got)
		}
		if slow && m.Offset == 2 {
			slow = false
			time.Sleep(time.Second) // past the lease
		}
		switch err := cons.Ack(ctx, m); {
		case errors.Is(err, client.ErrAckRefused):
			refused++
		case err != nil:
			t.Fatalf("ack of %d: %v", m.Offset, err)
		default:
			acked = max(acked, m.Offset)
		}
	}
	if refused == 0 {
		t.Fatalf("no acknowledgement refused after the lease: %v", got)
	}
	t.Logf("delivered offsets %v, %d refused", got, refused)
}

// TestConsumerTableDropped: a table dropped under its consumers ends
// their Next with an error, not a reconnection for ever.
func TestConsumerTableDropped(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dialTable(ctx, t, srv, 2)
	if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	var attempts [2]int
	var conss []*client.Consumer
	for i, cfg := range []client.ConsumerConfig{{Table: "t", Group: "g", Member: "m"}, {Table: "t", From: "beginning"}} {
		cfg.Reconnect = client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond,
			OnReconnect: func(error, int) { attempts[i]++ }}
		cons, err := client.NewConsumer(ctx, c.Events, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		if _, err := cons.Next(ctx); err != nil {
			t.Fatal(err)
		}
		conss = append(conss, cons)
	}
	if _, err := c.Admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "t", Force: true})); err != nil {
		t.Fatal(err)
	}
	for i, cons := range conss {
		nctx, ncancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := cons.Next(nctx)
		ncancel()
		t.Logf("consumer %d: %v (%d reconnection attempts)", i, err, attempts[i])
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("consumer %d of a dropped table: %v, %v; want an error", i, m, err)
		}
	}
}
