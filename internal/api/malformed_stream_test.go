package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestMalformedStreamMessage: a WriteStream message
// that is not a WriteStreamRequest ends that stream with invalid_argument;
// the server serves the next stream.
func TestMalformedStreamMessage(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/connect+proto", "application/connect+json"} {
		w := &world{}
		mux := NewMux()
		svc := Unimplemented()
		svc.Producer, svc.MaxBatch = NewProducerService(streamProxy(t, w)), 3
		Mount(mux, svc)
		_, srv := serveH2CHandler(t, mux)
		hc := h2cClient(t)
		var body bytes.Buffer
		garbage := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}
		if ct == "application/connect+json" {
			garbage = []byte(`{"seq": "x", "mutations": [`)
		}
		var hdr [5]byte
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(garbage)))
		body.Write(hdr[:])
		body.Write(garbage)
		req, _ := http.NewRequest("POST", srv.URL+wailv1connect.ProducerServiceWriteStreamProcedure, &body)
		req.Header.Set("Content-Type", ct)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s: HTTP %d %q", ct, resp.StatusCode, out)
		c := wailv1connect.NewProducerServiceClient(hc, srv.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s := c.WriteStream(ctx)
		if err := s.Send(batchOf(1, 2)); err != nil {
			t.Fatal(err)
		}
		a, err := s.Receive()
		if err != nil || len(a.Results) != 2 || a.Results[0].Version == 0 {
			t.Fatalf("the next stream: %v %v", a, err)
		}
		_ = s.CloseRequest()
		_ = s.CloseResponse()
		cancel()
		_ = connect.CodeInvalidArgument
	}
}
