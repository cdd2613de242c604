package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// put writes keys of "orders" and waits for their events (read until the
// end of what exists, until it holds them all).
func put(c *client.Client, keys ...string) {
	ctx := context.Background()
	for _, k := range keys {
		if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte(k), Value: []byte(`{"status":"placed"}`)})); err != nil {
			log.Fatal(err)
		}
	}
	for {
		cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "orders", From: "beginning", UntilEnd: true})
		if err != nil {
			log.Fatal(err)
		}
		n := 0
		for {
			if _, err := cons.Next(ctx); err != nil {
				break
			}
			n++
		}
		cons.Close()
		if n >= len(keys) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A consumer group member: events come per partition in order; each is
// acknowledged once processed, so a restarted member (or another member
// of the group) resumes after the last acknowledged one.
func ExampleNewConsumer_group() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(client.Options{Addr: addr})
	if err != nil {
		log.Fatal(err)
	}
	put(c, "order-1", "order-2", "order-3")
	ctx := context.Background()

	consume := func(member string, n int) {
		cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "orders", Group: "billing", Member: member})
		if err != nil {
			log.Fatal(err)
		}
		defer cons.Close()
		for range n {
			m, err := cons.Next(ctx)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s v>0=%v\n", m.Event.Key, m.Event.Version > 0)
			if err := cons.Ack(ctx, m); err != nil { // durable once it returns
				log.Fatal(err)
			}
		}
	}
	consume("billing-1", 1) // processes one event, then stops
	put(c, "order-4")
	fmt.Println("lag before the restart > 0:", lag(c) > 0)
	consume("billing-2", 3) // the next member gets the rest (partitions in any order)
	fmt.Println("lag after:", lag(c))
	// Unordered output:
	// order-1 v>0=true
	// lag before the restart > 0: true
	// order-2 v>0=true
	// order-3 v>0=true
	// order-4 v>0=true
	// lag after: 0
}

func describe(c *client.Client) []*wailv1.GroupPartition {
	d, err := c.Events.DescribeGroup(context.Background(), connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "orders", Group: "billing"}))
	if err != nil {
		log.Fatal(err)
	}
	return d.Msg.Partitions
}

func lag(c *client.Client) int64 {
	var n int64
	for _, p := range describe(c) {
		n += p.Lag
	}
	return n
}

// A subscription resumed from a cursor gets exactly the events after it.
func ExampleConsumer_Cursor() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(client.Options{Addr: addr})
	if err != nil {
		log.Fatal(err)
	}
	put(c, "a", "b", "c")
	ctx := context.Background()

	first, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "orders", From: "beginning", UntilEnd: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := first.Next(ctx); err != nil { // one event, then stop
		log.Fatal(err)
	}
	cursor := first.Cursor() // save it with what the event changed
	first.Close()

	rest, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "orders", From: cursor, UntilEnd: true})
	if err != nil {
		log.Fatal(err)
	}
	defer rest.Close()
	n := 0
	for {
		_, err := rest.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println("events after the cursor:", n)
	// Output: events after the cursor: 2
}

// A subscription that must not lose events without knowing: OnGap says
// which offsets retention (the server's log.event_retention) removed
// before it read them, and FailOnGap fails instead of skipping them
// (here nothing was removed: the cursor is recent).
func ExampleConsumerConfig_gaps() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(client.Options{Addr: addr})
	if err != nil {
		log.Fatal(err)
	}
	put(c, "a", "b")
	ctx := context.Background()

	cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "orders", From: "beginning", UntilEnd: true,
		FailOnGap: true, // without it, the consumer skips them and OnGap is told
		OnGap: func(gap *wailv1.RetentionGap) {
			fmt.Printf("lost partition %d offsets [%d, %d)\n", gap.Partition, gap.From, gap.To)
		}})
	var ge *client.GapError
	if errors.As(err, &ge) {
		fmt.Println("lost offsets: take a snapshot (From \"snapshot\") and resume from it:", ge)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer cons.Close()
	n := 0
	for {
		_, err := cons.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.As(err, &ge) {
			fmt.Println("lost offsets: take a snapshot (From \"snapshot\") and resume from it:", ge)
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println("events, none lost:", n)
	// Output: events, none lost: 2
}
