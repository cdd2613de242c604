package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// exampleServer runs a wail server on a temporary directory, with a table
// "orders", and returns its address and how to stop it.
func exampleServer() (addr string, stop func()) {
	dir, err := os.MkdirTemp("", "wail-example-*")
	if err != nil {
		log.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { ready <- a }) }()
	addr = <-ready
	c, err := client.Dial(client.Options{Addr: addr})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders"})); err != nil {
		log.Fatal(err)
	}
	return addr, func() { cancel(); <-done; os.RemoveAll(dir) }
}

// Many goroutines write one key at a time, each waiting for its own
// answer; the producer sends their writes in a few large batches on one
// stream.
func ExampleProducer() {
	addr, stop := exampleServer()
	defer stop()

	p, err := client.NewProducer(client.Options{Addr: addr}, client.ProducerConfig{Linger: 5 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	versions := make([]uint64, 100)
	for i := range versions {
		wg.Go(func() {
			res, err := p.Put(ctx, "orders", fmt.Appendf(nil, "order-%d", i), []byte(`{"status":"placed"}`))
			if err != nil {
				log.Fatal(err)
			}
			versions[i] = res.Version
		})
	}
	wg.Wait()
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
	written := 0
	for _, v := range versions {
		if v != 0 {
			written++
		}
	}
	fmt.Println("written:", written)
	// Output: written: 100
}

// Writes of one key are answered in the order they were made, and each
// later one gets the higher version, retries included.
func ExampleProducer_order() {
	addr, stop := exampleServer()
	defer stop()

	p, err := client.NewProducer(client.Options{Addr: addr}, client.ProducerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	placed, err := p.Put(ctx, "orders", []byte("order-1"), []byte(`{"status":"placed"}`))
	if err != nil {
		log.Fatal(err)
	}
	shipped, err := p.Put(ctx, "orders", []byte("order-1"), []byte(`{"status":"shipped"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("shipped after placed:", shipped.Version > placed.Version)
	// Output: shipped after placed: true
}
