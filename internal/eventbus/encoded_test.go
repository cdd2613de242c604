package eventbus

import (
	"cmp"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intent"
)

// TestEncodedEventsLikeDecoded: every client of Subscribe receives the
// same messages, whether the server passed the events' records on as they
// are (binary protobuf: connect, gRPC, gRPC-Web) or decoded them (JSON,
// and a stream read in the process).
func TestEncodedEventsLikeDecoded(t *testing.T) {
	st := newStreams(t, 2, Limits{})
	evs := []intent.Event{
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 10, Value: []byte("v1"), CoveredIntents: 2},
		{Table: "t", Key: []byte("b"), Op: intent.Upsert, Version: 11, Value: []byte{}, Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{Table: "t", Key: []byte("a"), Op: intent.Delete, Version: 12},
		{Table: "t", Key: []byte("\x00\xff"), Op: intent.Upsert, Version: 1 << 60, Value: make([]byte, 300), SchemaID: 7},
	}
	if err := st.bus.Publish(st.ctx, "t", evs); err != nil {
		t.Fatal(err)
	}
	for _, per := range []int32{0, 3} {
		req := &wailv1.SubscribeRequest{Table: "t", From: "beginning", UntilEnd: true, MaxBatchEvents: per}
		var want []*wailv1.SubscribeResponse
		if err := st.svc.Stream(st.ctx, req, func() error { return nil }, func(m *wailv1.SubscribeResponse) error {
			want = append(want, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n := len(flatten(want)); n != len(evs) {
			t.Fatalf("batch %d: %d events read in the process, want %d", per, n, len(evs))
		}
		for name, opts := range map[string][]connect.ClientOption{
			"connect": nil, "json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
		} {
			c := wailv1connect.NewEventServiceClient(http.DefaultClient, st.url, opts...)
			s, err := c.Subscribe(st.ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			var got []*wailv1.SubscribeResponse
			for s.Receive() {
				got = append(got, s.Msg())
			}
			if err := s.Err(); err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("batch %d, %s: %v", per, name, err)
			}
			// Messages may group events differently (what a read finds
			// queued): compare the events, and where the stream ends.
			g, w := flatten(got), flatten(want)
			if len(g) != len(w) || got[len(got)-1].Cursor != want[len(want)-1].Cursor {
				t.Fatalf("batch %d, %s: %d events, want %d; cursor %q, want %q", per, name, len(g), len(w),
					got[len(got)-1].Cursor, want[len(want)-1].Cursor)
			}
			for i := range g {
				if !proto.Equal(g[i], w[i]) {
					t.Errorf("batch %d, %s, event %d:\n got %v\nwant %v", per, name, i, g[i], w[i])
				}
			}
		}
	}
}

// flatten returns the events of messages, each with its partition and
// offset, by partition then offset (partitions interleave as they are
// read).
func flatten(ms []*wailv1.SubscribeResponse) []*wailv1.StreamedEvent {
	var out []*wailv1.StreamedEvent
	for _, m := range ms {
		out = append(out, m.Events...)
		if m.Event != nil {
			out = append(out, &wailv1.StreamedEvent{Event: m.Event, Partition: m.Partition, Offset: m.Offset, Snapshot: m.Snapshot})
		}
	}
	slices.SortStableFunc(out, func(a, b *wailv1.StreamedEvent) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out
}
