package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// streamWatch counts a client's WriteStream calls and the mutations
// answered resource_exhausted on them.
type streamWatch struct {
	opened, exhausted atomic.Int32
}

func (*streamWatch) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (*streamWatch) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (s *streamWatch) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if spec.Procedure != wailv1connect.ProducerServiceWriteStreamProcedure {
			return conn
		}
		s.opened.Add(1)
		return &watchedConn{StreamingClientConn: conn, w: s}
	}
}

type watchedConn struct {
	connect.StreamingClientConn
	w *streamWatch
}

func (c *watchedConn) Receive(m any) error {
	err := c.StreamingClientConn.Receive(m)
	if r, ok := m.(*wailv1.WriteStreamResponse); ok && err == nil {
		for _, res := range r.GetResults() {
			if res.GetError().GetCode() == connect.CodeResourceExhausted.String() {
				c.w.exhausted.Add(1)
			}
		}
	}
	return err
}

// TestProducerOverQuota: a Producer whose writes go over the caller's
// write quota (security.quotas) gets them refused per mutation,
// resource_exhausted with the wait, on a stream the server keeps open:
// it sends them again after the wait on that stream (no new stream, so
// no fence) and every write is delivered.
func TestProducerOverQuota(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, func(cfg *config.Config) {
		cfg.Security.Quotas.WriteRate, cfg.Security.Quotas.WriteBurst = 100, 5 // 5 at once, then one per 10ms
	})
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := client.Dial(client.Options{Addr: srv.addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"})); err != nil {
		t.Fatal(err)
	}
	watch := &streamWatch{}
	p, err := client.NewProducer(client.Options{Addr: srv.addr, ConnectOptions: []connect.ClientOption{connect.WithInterceptors(watch)}},
		client.ProducerConfig{Linger: time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	const writers, each = 8, 25 // 200 writes: 2 s at 100 per second
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := p.Put(ctx, "t", fmt.Appendf(nil, "w%d-%d", w, i), []byte("v")); err != nil {
					errs <- fmt.Errorf("write w%d-%d: %w", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if watch.exhausted.Load() == 0 {
		t.Fatal("no write was refused over the quota: the test proves nothing")
	}
	if n := watch.opened.Load(); n != 1 {
		t.Fatalf("%d write streams opened, want 1 (%d writes refused over the quota): a refusal ended the stream", n, watch.exhausted.Load())
	}
}
