package eventbus

import (
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSubscribePassesUnencodableRecords: a record of the event topic that
// reads as a typed event but whose headers would make its ChangeEvent's
// text fields invalid UTF-8 (a foreign producer's, on Kafka) is passed
// like any record that is not an event. Before, it was decoded, and the
// stream failed marshalling it: every stream from before it failed there
// again (a client resuming from its cursor, a group member joining
// again, a sink), the partition frozen for every reader.
func TestSubscribePassesUnencodableRecords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		headers []intentlog.Header
	}{
		{"table of the event id", []intentlog.Header{{Key: HeaderOp, Value: []byte("DELETE")}, {Key: HeaderVersion, Value: []byte("3")},
			{Key: HeaderEventID, Value: []byte("\xff\xfe/6b/3")}}},
		{"trace", []intentlog.Header{{Key: HeaderOp, Value: []byte("DELETE")}, {Key: HeaderVersion, Value: []byte("3")},
			{Key: HeaderEventID, Value: []byte("t/6b/3")}, {Key: HeaderTrace, Value: []byte("\xff")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newStreams(t, 1, Limits{})
			ctx, log, b, c := st.ctx, st.log, st.bus, st.c
			upserts(t, b, 1)
			if err := log.Append(ctx, Topic("t"), []*intentlog.Record{{Key: []byte("k"), Headers: tc.headers}}); err != nil {
				t.Fatal(err)
			}
			upserts(t, b, 4)
			s, err := subscribe(ctx, c, "t", "beginning")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := receive(t, s, 2)
			if got[0].Event.GetVersion() != 1 || got[1].Event.GetVersion() != 4 {
				t.Fatalf("events v%d, v%d; want v1, v4", got[0].Event.GetVersion(), got[1].Event.GetVersion())
			}
		})
	}
}
