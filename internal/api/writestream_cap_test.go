package api

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestWriteStreamOverCapThroughMount: served as the server serves it
// (Mount, whose codecs count a batch's mutations before decoding them), a
// WriteStream batch over limits.max_batch_mutations is answered
// invalid_argument under its seq, nothing of it written, and the stream
// goes on: the batches after it are served. Binary and JSON. (The codecs
// refused it by ending the stream, which dropped every batch sent after
// it.)
func TestWriteStreamOverCapThroughMount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"binary", nil},
		{"json", []connect.ClientOption{connect.WithProtoJSON()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{}
			mux := NewMux()
			svc := Unimplemented()
			svc.Producer, svc.MaxBatch = NewProducerService(streamProxy(t, w)), 3
			Mount(mux, svc)
			_, srv := serveH2CHandler(t, mux)
			c := wailv1connect.NewProducerServiceClient(h2cClient(t), srv.URL, tc.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s := c.WriteStream(ctx)
			for _, n := range []int{2, 4, 1} { // the second is over the cap of 3
				if err := s.Send(batchOf(uint64(n)*10, n)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CloseRequest(); err != nil {
				t.Fatal(err)
			}
			answers := map[uint64]string{}
			for {
				a, err := s.Receive()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("the stream ended with %v after %v", err, answers)
				}
				switch {
				case a.Error != nil:
					if a.Error.Code != "invalid_argument" || !strings.Contains(a.Error.Message, "limits.max_batch_mutations") {
						t.Fatalf("batch %d refused with %v", a.Seq, a.Error)
					}
					answers[a.Seq] = "refused"
				case len(a.Results) > 0 && a.Results[0].Version > 0:
					answers[a.Seq] = "written"
				default:
					t.Fatalf("batch %d: %v", a.Seq, a)
				}
			}
			if len(answers) != 3 || answers[20] != "written" || answers[40] != "refused" || answers[10] != "written" {
				t.Fatalf("answers %v; want 20 and 10 written, 40 refused", answers)
			}
			if err := s.CloseResponse(); err != nil {
				t.Fatal(err)
			}
			if w.Row("k40-0").Version != 0 || w.Row("k20-0").Version == 0 {
				t.Fatal("a mutation of the refused batch was written, or one of the others not")
			}
		})
	}
}

// h2cClient is an HTTP/2 client whose idle connections close with t.
func h2cClient(t *testing.T) connect.HTTPClient {
	hc := h2c()
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}
