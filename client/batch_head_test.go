package client

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// clocked answers every batch, written, and tells a server_time in every
// answer: a server up for years, whose time takes 8 bytes as a varint, so
// the producer's batches carry a stamp_before as long.
type clocked struct {
	wailv1connect.UnimplementedProducerServiceHandler
	version atomic.Uint64
}

func (c *clocked) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if err != nil {
			return err // over the cap: the stream ends, as a server's does
		}
		out := &wailv1.WriteStreamResponse{Seq: req.GetSeq(), ServerTime: 1 << 60}
		for range req.GetMutations() {
			out.Results = append(out.Results, &wailv1.WriteResult{Version: c.version.Add(1), Stored: true, IntentLogged: true})
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// valueOfSize is a write of table t, key k, whose mutation takes size
// bytes in a batch.
func valueOfSize(t *testing.T, key string, size int) *wailv1.Mutation {
	t.Helper()
	for n := size; n > size-20; n-- {
		m := &wailv1.Mutation{Table: "t", Key: []byte(key), Value: bytes.Repeat([]byte("v"), n)}
		if protowire.SizeTag(2)+protowire.SizeBytes(proto.Size(m)) == size {
			return m
		}
	}
	t.Fatalf("no write of %d bytes", size)
	return nil
}

// TestMaxBatchBytesCountsStampBefore: MaxBatchBytes bounds the whole
// request, its stamp_before included. Set to the server's cap, writes that
// fill a batch but for its seq are refused at once or sent in batches
// within the cap, never in one the server refuses (by ending the stream)
// at each try until their delivery timeout.
func TestMaxBatchBytesCountsStampBefore(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	for _, tc := range []struct {
		name  string
		sizes []int // of the writes, as mutations in a batch
	}{
		{"one write filling the batch but for its seq", []int{limit - seqBytesOnly}},
		{"two writes filling the batch but for its seq", []int{limit / 2, limit - seqBytesOnly - limit/2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A fence long enough for a stamp window (stamp_before set).
			p := serveHandler(t, &clocked{}, ProducerConfig{Linger: 20 * time.Millisecond, RetryBackoff: time.Millisecond,
				MaxBatchBytes: limit, DeliveryTimeout: 3 * time.Second}, 300*time.Millisecond, connect.WithReadMaxBytes(limit))
			start := time.Now()
			var wg sync.WaitGroup
			errs := make([]error, len(tc.sizes))
			for i, size := range tc.sizes {
				m := valueOfSize(t, string(rune('a'+i)), size)
				wg.Go(func() { _, errs[i] = p.Write(context.Background(), m) })
			}
			wg.Wait()
			took := time.Since(start)
			for i, err := range errs {
				var werr *WriteError
				if err != nil && (!errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument) {
					t.Fatalf("write %d (%d bytes) after %s: %v; want written, or invalid_argument at once", i, tc.sizes[i], took.Round(time.Millisecond), err)
				}
			}
			if took > time.Second {
				t.Fatalf("the writes took %s: %v", took.Round(time.Millisecond), errs)
			}
		})
	}
}

// seqBytesOnly is what the producer left of MaxBatchBytes for a batch's
// seq alone (a tag and a varint of at most 10 bytes).
const seqBytesOnly = 1 + 10

// capped is clocked behind a server cap on a batch, which it tells in
// every answer (max_batch_bytes) as a server of now does.
type capped struct {
	clocked
	limit int
}

func (c *capped) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if err != nil {
			return err // over the cap: the stream ends, as a server's does
		}
		out := &wailv1.WriteStreamResponse{Seq: req.GetSeq(), ServerTime: 1 << 60, MaxBatchBytes: uint64(c.limit)}
		for range req.GetMutations() {
			out.Results = append(out.Results, &wailv1.WriteResult{Version: c.version.Add(1), Stored: true, IntentLogged: true})
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestServerBatchCap: a server whose cap on a batch is below the
// producer's MaxBatchBytes (limits lowered: the cap is
// limits.max_batch_mutations mutations at their limits) tells it; a write
// that alone passes it fails at once, invalid_argument, and the writes
// batched with it are written, in batches within it. (Sent with them, it
// made the server end the stream at each try: every write of its batch
// failed at its delivery timeout, and every key in flight was fenced at
// each break.)
func TestServerBatchCap(t *testing.T) {
	t.Parallel()
	const limit = 4 << 10
	p := serveHandler(t, &capped{limit: limit}, ProducerConfig{Linger: 20 * time.Millisecond, RetryBackoff: time.Millisecond,
		DeliveryTimeout: 3 * time.Second}, 300*time.Millisecond, connect.WithReadMaxBytes(limit))
	sizes := []int{limit / 4, 2 * limit, limit / 4, limit / 4, limit / 4} // the second alone passes the cap
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	for i, size := range sizes {
		m := valueOfSize(t, string(rune('a'+i)), size)
		wg.Go(func() { _, errs[i] = p.Write(context.Background(), m) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		var werr *WriteError
		switch {
		case sizes[i] > limit && (!errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument):
			t.Fatalf("write %d (%d bytes, over the server's cap) after %s: %v; want invalid_argument", i, sizes[i], took.Round(time.Millisecond), err)
		case sizes[i] <= limit && err != nil:
			t.Fatalf("write %d (%d bytes) after %s: %v; want written", i, sizes[i], took.Round(time.Millisecond), err)
		}
	}
	if took > time.Second {
		t.Fatalf("the writes took %s", took.Round(time.Millisecond))
	}
}
