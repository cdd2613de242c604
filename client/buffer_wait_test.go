package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

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
			if !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded || !errors.Is(err, ErrFull) {
				t.Fatalf("the write waiting for room: %v; want deadline_exceeded, ErrFull", err)
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
