package client

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
)

// TestProducerRefusesMalformedWrites: a write that cannot be encoded
// fails at once with invalid_argument; it does not break the stream (and
// fence the keys of everything in flight) again and again until its
// delivery timeout.
func TestProducerRefusesMalformedWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    *wailv1.Mutation
	}{
		{name: "table not UTF-8", m: &wailv1.Mutation{Table: "t\xff", Key: []byte("k")}},
		{name: "value_json not UTF-8", m: &wailv1.Mutation{Table: "t", Key: []byte("k"), ValueJson: "{\"a\":\"\xff\"}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScript()
			p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 3 * time.Second}, 10*time.Millisecond)
			start := time.Now()
			_, err := p.Write(context.Background(), tc.m)
			var werr *WriteError
			if !errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument {
				t.Fatalf("a malformed write: %v after %s; want invalid_argument", err, time.Since(start).Round(time.Millisecond))
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("a malformed write failed after %s: it was retried", d)
			}
			if _, err := p.Put(context.Background(), "t", []byte("good"), nil); err != nil {
				t.Fatalf("a good write after it: %v", err)
			}
		})
	}
}

// TestProducerBatchBytes: many writes of the largest values a server
// takes by default (limits.max_value_bytes, 1 MiB) go in batches the
// server takes (api.max_write_request_bytes, 32 MiB by default), instead
// of one batch it refuses again and again; a write over MaxBatchBytes
// fails at once.
func TestProducerBatchBytes(t *testing.T) {
	t.Parallel()
	s := newScript()
	p := serveHandler(t, s, ProducerConfig{Linger: 50 * time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 4 * time.Second},
		10*time.Millisecond, connect.WithReadMaxBytes(32<<20))
	value := bytes.Repeat([]byte("v"), 1<<20)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			if _, err := p.Put(context.Background(), "t", fmt.Appendf(nil, "k%d", i), value); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a write of 1 MiB among 40: %v", err)
	}
	huge := bytes.Repeat([]byte("v"), 17<<20) // over the default MaxBatchBytes
	_, err := p.Put(context.Background(), "t", []byte("huge"), huge)
	var werr *WriteError
	if !errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument {
		t.Fatalf("a write over MaxBatchBytes: %v; want invalid_argument", err)
	}
}
