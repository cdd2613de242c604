package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestProducerWithinServerBatchCap: with limits lowered, the server's cap
// on a write stream's batch (limits.max_batch_mutations mutations at their
// limits) is far below a producer's MaxBatchBytes (16 MiB). The server
// tells it, so a write over it alone fails at once, invalid_argument, and
// the writes batched with it are written. (Sent with them, it made the
// server end the stream at each try: all of them failed at their
// delivery timeout.)
func TestProducerWithinServerBatchCap(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, func(cfg *config.Config) {
		cfg.Limits.MaxKeyBytes, cfg.Limits.MaxValueBytes, cfg.Limits.MaxBatchMutations = 64, 1024, 10
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(client.Options{Addr: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	p, err := client.NewProducer(client.Options{Addr: url}, client.ProducerConfig{BatchSize: 10, Linger: 50 * time.Millisecond, DeliveryTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(ctx) }()
	sizes := []int{100, 64 << 10, 100, 100} // the second passes the cap alone
	errs := make([]error, len(sizes))
	start := time.Now()
	var wg sync.WaitGroup
	for i, n := range sizes {
		wg.Go(func() { _, errs[i] = p.Put(ctx, "t", fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte("v"), n)) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		var werr *client.WriteError
		switch {
		case sizes[i] > 1024 && (!errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument):
			t.Fatalf("write %d (%d bytes, over the cap alone) after %s: %v; want invalid_argument", i, sizes[i], took.Round(time.Millisecond), err)
		case sizes[i] <= 1024 && err != nil:
			t.Fatalf("write %d (%d bytes) after %s: %v; want written", i, sizes[i], took.Round(time.Millisecond), err)
		}
	}
	if took > 2*time.Second {
		t.Fatalf("the writes took %s", took.Round(time.Millisecond))
	}
}
