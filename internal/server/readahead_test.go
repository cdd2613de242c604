package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
)

// TestStalledSubscribersHoldTheProcessBudget: Subscribe clients that
// read nothing hold, all together, about api.max_subscription_buffered_bytes
// read ahead (wail_api_subscription_buffered_bytes), not each
// api.subscription_buffer_bytes; a client that reads gets every event
// beside them; and the budget is given back once they are gone.
func TestStalledSubscribersHoldTheProcessBudget(t *testing.T) {
	t.Parallel()
	const (
		value   = 100 << 10
		events  = 200 // 20 MiB
		stream  = 4 << 20
		budget  = 8 << 20
		stalled = 12
	)
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.SubscriptionBufferBytes = stream
		cfg.API.MaxSubscriptionBufferedBytes = budget
		cfg.API.WriteTimeout = time.Minute // the stalled streams stay for the test
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < events; i += 10 {
		var ms []*wailv1.Mutation
		for j := i; j < i+10; j++ {
			ms = append(ms, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k%d", j), Value: bytes.Repeat([]byte("v"), value)})
		}
		if _, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: ms})); err != nil {
			t.Fatal(err)
		}
	}
	// Every event is on the bus before the stalled streams open.
	read := func() int {
		s, err := c.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning", UntilEnd: true, MaxBatchEvents: 100}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := 0
		for s.Receive() {
			got += len(s.Msg().Events)
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for deadline := time.Now().Add(30 * time.Second); read() < events; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the %d events written never all reached the bus", events)
		}
	}

	msg, err := proto.Marshal(&wailv1.SubscribeRequest{Table: "t", From: "beginning"})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.WriteByte(0)
	_ = binary.Write(&body, binary.BigEndian, uint32(len(msg)))
	body.Write(msg)
	for range stalled {
		conn := rawConn(t, c.url)
		if _, err := fmt.Fprintf(conn, "POST /wail.v1.EventService/Subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/connect+proto\r\nContent-Length: %d\r\n\r\n%s",
			body.Len(), body.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	var held float64
	for last, stable := -1.0, 0; stable < 10; time.Sleep(50 * time.Millisecond) {
		if held = metric(t, c.url, "wail_api_subscription_buffered_bytes"); held == last {
			stable++
		} else {
			last, stable = held, 0
		}
	}
	t.Logf("%d Subscribe clients that read nothing hold %.1f MiB read ahead (each may hold %d MiB; the process %d MiB)",
		stalled, held/(1<<20), stream>>20, budget>>20)
	// Past the budget each stream holds at most one log read (1 MiB).
	if limit := float64(budget + stalled*(1<<20+64<<10)); held > limit {
		t.Fatalf("%d clients that read nothing hold %.0f bytes read ahead, more than api.max_subscription_buffered_bytes (%d) and a log read each",
			stalled, held, budget)
	}
	if metric(t, c.url, "wail_api_subscription_buffer_waits_total") <= 0 {
		t.Fatal("no stream waited for the budget: the test does not fill it")
	}
	if got := read(); got != events {
		t.Fatalf("a client that reads, beside %d that do not: %d events of %d", stalled, got, events)
	}
}
