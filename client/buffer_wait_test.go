package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// silent answers a stream's probe and reads every batch after it without
// ever answering: a server whose writes hang while the stream stays open.
type silent struct {
	wailv1connect.UnimplementedProducerServiceHandler
}

func (silent) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		answerProbe(st, req)
	}
}

// TestDeliveryTimeoutCountsBufferWait: with the producer full (MaxBuffered
// writes, or MaxBufferedBytes, held) and the server silent, a Write with
// no deadline of its own fails within its delivery timeout of its call,
// deadline_exceeded, saying the producer was full: it does not wait for
// room first and then a whole delivery timeout more (with more writers
// waiting, a delivery timeout more per write ahead of it).
func TestDeliveryTimeoutCountsBufferWait(t *testing.T) {
	t.Parallel()
	const timeout = 600 * time.Millisecond
	for _, tc := range []struct {
		name string
		cfg  ProducerConfig
	}{
		{"MaxBuffered", ProducerConfig{MaxBuffered: 1}},
		{"MaxBufferedBytes", ProducerConfig{MaxBufferedBytes: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Linger, cfg.DeliveryTimeout = time.Millisecond, timeout
			p := serveHandler(t, silent{}, cfg, time.Millisecond)
			first := make(chan error, 1)
			go func() { _, err := p.Put(context.Background(), "t", []byte("a"), make([]byte, 40)); first <- err }()
			for len(p.space) == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(timeout / 3) // the first holds the room a while before the second comes
			start := time.Now()
			_, err := p.Put(context.Background(), "t", []byte("b"), make([]byte, 40))
			took := time.Since(start)
			var werr *WriteError
			// ErrFull if it found no room in time, else it failed in flight.
			if !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded {
				t.Fatalf("the write waiting for room: %v; want deadline_exceeded", err)
			}
			if took > timeout+timeout/3 {
				t.Fatalf("the write waiting for room took %s, over its delivery timeout (%s): %v", took.Round(time.Millisecond), timeout, err)
			}
			if err := <-first; err == nil {
				t.Fatal("the first write was answered by a silent server")
			}
		})
	}
}

// TestHoldFailsFull: a write that finds no room (MaxBuffered writes, or
// MaxBufferedBytes, held) until its delivery timeout fails ErrFull,
// deadline_exceeded; its context's end and Close still win.
func TestHoldFailsFull(t *testing.T) {
	t.Parallel()
	full := func() *Producer {
		p := &Producer{space: make(chan struct{}, 1), bytes: semaphore.NewWeighted(10), stop: make(chan struct{})}
		p.stopped, p.stopStopped = context.WithCancel(context.Background())
		p.space <- struct{}{}
		p.bytes.TryAcquire(10)
		return p
	}
	holds := map[string]func(p *Producer, ctx context.Context, deadline time.Time) error{
		"MaxBuffered":      func(p *Producer, ctx context.Context, d time.Time) error { return p.holdSpace(ctx, d) },
		"MaxBufferedBytes": func(p *Producer, ctx context.Context, d time.Time) error { return p.holdBytes(ctx, 1, d) },
	}
	for name, hold := range holds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := full()
			var werr *WriteError
			if err := hold(p, context.Background(), time.Now().Add(20*time.Millisecond)); !errors.Is(err, ErrFull) || !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded {
				t.Fatalf("no room until the deadline: %v; want ErrFull, deadline_exceeded", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := hold(p, ctx, time.Now().Add(time.Minute)); !errors.Is(err, context.Canceled) {
				t.Fatalf("context ended: %v", err)
			}
			close(p.stop)
			p.stopStopped()
			if err := hold(p, context.Background(), time.Now().Add(time.Minute)); !errors.Is(err, ErrClosed) {
				t.Fatalf("closed: %v", err)
			}
		})
	}
}
