package api

import (
	"context"
	"testing"
	"time"
)

// TestWriteStreamTellsMaxBatchBytes: every answer of a write stream, the
// probe's (a batch without writes) and a written batch's, tells the cap
// on a batch (max_batch_bytes, StreamLimits.MaxBatchBytes), so a producer
// keeps its batches within it instead of sending one the server refuses
// by ending the stream; 0 when not set.
func TestWriteStreamTellsMaxBatchBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cap  int64
	}{
		{"cap set", 12345},
		{"no cap", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{}
			c := serveH2C(t, NewProducerService(streamProxy(t, w)).WithStreamLimits(StreamLimits{MaxBatchBytes: tc.cap}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s := c.WriteStream(ctx)
			for _, n := range []int{0, 2} { // a probe, then a batch
				if err := s.Send(batchOf(uint64(n+1), n)); err != nil {
					t.Fatal(err)
				}
				a, err := s.Receive()
				if err != nil {
					t.Fatal(err)
				}
				if a.GetMaxBatchBytes() != uint64(tc.cap) {
					t.Fatalf("the answer of a batch of %d writes tells max_batch_bytes %d; want %d", n, a.GetMaxBatchBytes(), tc.cap)
				}
			}
			_ = s.CloseRequest()
			_ = s.CloseResponse()
		})
	}
}
