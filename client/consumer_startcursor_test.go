package client_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestConsumerCursorBeforeNext: a subscription's Cursor, right after
// NewConsumer (which starts it) and before any Next, is its start: kept
// and passed as From, it resumes there, the events written meanwhile
// included.
func TestConsumerCursorBeforeNext(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialTable(ctx, t, srv, 2)
	cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t", From: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	cursor := cons.Cursor()
	cons.Close()
	if cursor == "" {
		t.Fatal(`Cursor after NewConsumer is "": kept and passed as From, it starts at "latest" and skips what was written meanwhile`)
	}
	if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("a"), Value: []byte(`{}`)})); err != nil {
		t.Fatal(err)
	}
	again, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t", From: cursor})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	m, err := again.Next(ctx)
	if err != nil || string(m.Event.Key) != "a" {
		t.Fatalf("resumed from the start cursor: %v, %v", m, err)
	}
}
