package eventbus

import (
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestSubscribeBatches streams events published before the subscription
// (so the server's queue holds many at once) and checks that batching
// clients get several per message, capped by what they asked, by
// MaxBatchEvents and by the stream's buffer, in order and complete, and
// that clients which do not ask get one event per message, as before.
func TestSubscribeBatches(t *testing.T) {
	const n = 1200 // under -race on a busy machine one event per message is slow (a cursor each)
	for _, tc := range []struct {
		name        string
		ask         int32
		bufferBytes int64
		wantMax     int // most events a message may carry
		wantBatched bool
	}{
		{name: "unbatched client", ask: 0, wantMax: 1},
		{name: "negative is unbatched", ask: -5, wantMax: 1},
		{name: "batches of 100", ask: 100, wantMax: 100, wantBatched: true},
		{name: "capped at MaxBatchEvents", ask: 100000, wantMax: MaxBatchEvents, wantBatched: true},
		{name: "capped by the buffer", ask: 1000, bufferBytes: 4000, wantMax: 1000, wantBatched: true}, // some ten events in memory (liveEvent.memory)
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStreams(t, 1, Limits{BufferBytes: tc.bufferBytes})
			versions := make([]uint64, n)
			for i := range versions {
				versions[i] = uint64(i + 1)
			}
			upserts(t, st.bus, versions...)
			s, err := st.c.Subscribe(st.ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning", MaxBatchEvents: tc.ask}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got []uint64
			msgs, most := 0, 0
			for len(got) < n && s.Receive() {
				m := s.Msg()
				evs := m.GetEvents()
				if tc.wantBatched {
					if m.Event != nil || len(evs) == 0 {
						t.Fatalf("a batching client got event=%v and %d events", m.Event, len(evs))
					}
				} else {
					if m.Event == nil && len(evs) == 0 {
						continue // the headers
					}
					if len(evs) != 0 || m.Event == nil {
						t.Fatalf("a client that did not ask for batches got %d batched events", len(evs))
					}
					evs = []*wailv1.StreamedEvent{{Event: m.Event, Partition: m.Partition, Offset: m.Offset}}
				}
				msgs++
				most = max(most, len(evs))
				if tc.bufferBytes > 0 {
					var bytes int
					for _, e := range evs[:len(evs)-1] {
						bytes += proto.Size(e.Event)
					}
					if int64(bytes) > tc.bufferBytes {
						t.Fatalf("a message holds %d bytes of events besides its last one, over the %d byte buffer", bytes, tc.bufferBytes)
					}
				}
				for _, e := range evs {
					if want := int64(len(got)); e.Offset != want {
						t.Fatalf("event %d at offset %d, want %d", len(got), e.Offset, want)
					}
					got = append(got, e.Event.GetVersion())
				}
			}
			if len(got) != n {
				t.Fatalf("got %d events of %d: %v", len(got), n, s.Err())
			}
			for i, v := range got {
				if v != versions[i] {
					t.Fatalf("event %d has version %d, want %d", i, v, versions[i])
				}
			}
			if most > tc.wantMax {
				t.Fatalf("a message carried %d events, the cap is %d", most, tc.wantMax)
			}
			if tc.wantBatched && msgs >= n/2 {
				t.Fatalf("%d events came in %d messages: not batched", n, msgs)
			}
			t.Logf("%d events in %d messages, at most %d in one", n, msgs, most)
		})
	}
}

// TestPack: a read of the stream's queue goes out in messages of at most
// per events (exactly per while there are more), each with the cursor of
// its last event and the events' partition and offset; a message without
// an event (a cursor) stays in place and the next event starts a new
// message; per 0 sends the responses as they are.
func TestPack(t *testing.T) {
	t.Parallel()
	ev := func(v uint64) *wailv1.SubscribeResponse {
		return &wailv1.SubscribeResponse{Event: &wailv1.ChangeEvent{Version: v}, Partition: int32(v % 2), Offset: int64(v) * 10, Cursor: fmt.Sprint("c", v)}
	}
	cursor := &wailv1.SubscribeResponse{Cursor: "end"}
	resps := []*wailv1.SubscribeResponse{ev(1), ev(2), ev(3), ev(4), ev(5), cursor, ev(6)}
	show := func(msgs []*wailv1.SubscribeResponse) string {
		var b strings.Builder
		for _, m := range msgs {
			if m.Event != nil {
				fmt.Fprintf(&b, "(%d) ", m.Event.Version)
				continue
			}
			b.WriteString("[")
			for _, e := range m.Events {
				fmt.Fprintf(&b, "%d@%d/%d ", e.Event.Version, e.Partition, e.Offset)
			}
			fmt.Fprintf(&b, "%s] ", m.Cursor)
		}
		return b.String()
	}
	for _, tc := range []struct {
		per  int
		want string
	}{
		{0, "(1) (2) (3) (4) (5) [end] (6) "},
		{1, "[1@1/10 c1] [2@0/20 c2] [3@1/30 c3] [4@0/40 c4] [5@1/50 c5] [end] [6@0/60 c6] "},
		{2, "[1@1/10 2@0/20 c2] [3@1/30 4@0/40 c4] [5@1/50 c5] [end] [6@0/60 c6] "},
		{5, "[1@1/10 2@0/20 3@1/30 4@0/40 5@1/50 c5] [end] [6@0/60 c6] "},
		{100, "[1@1/10 2@0/20 3@1/30 4@0/40 5@1/50 c5] [end] [6@0/60 c6] "},
	} {
		if got := show(pack(resps, tc.per)); got != tc.want {
			t.Errorf("per %d: %s, want %s", tc.per, got, tc.want)
		}
	}
}
