package eventbus

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

func openBus(t *testing.T, partitions int32) (*Bus, *embedded.Log) {
	t.Helper()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	b := New(log)
	if err := b.CreateTable(context.Background(), "t", partitions, 0); err != nil {
		t.Fatal(err)
	}
	return b, log
}

func readAll(t *testing.T, log intentlog.Log, topic string, p int32) []intentlog.Record {
	t.Helper()
	ctx := context.Background()
	start, end, err := log.Bounds(ctx, topic, p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := log.NewReader(topic, p, start)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []intentlog.Record
	for r.Position() < end {
		recs, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

// TestPublishRecords pins what Publish appends: each event's record with
// its headers, and a tombstone (the key, a nil value, no headers) right
// after every delete, so a compacted topic can drop the key.
func TestPublishRecords(t *testing.T) {
	t.Parallel()
	b, log := openBus(t, 1)
	evs := []intent.Event{
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 10, Value: []byte("x")},
		{Table: "t", Key: []byte("b"), Op: intent.Delete, Version: 11},
		{Table: "t", Key: []byte("a"), Op: intent.Delete, Version: 12},
		{Table: "t", Key: []byte("c"), Op: intent.Upsert, Version: 13, Value: []byte{}},
	}
	if err := b.Publish(context.Background(), "t", evs); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, log, Topic("t"), 0)
	want := []struct {
		key       string
		version   uint64 // 0: a tombstone
		op        string
		tombstone bool
	}{
		{"a", 10, "UPSERT", false}, {"b", 11, "DELETE", false}, {"b", 0, "", true},
		{"a", 12, "DELETE", false}, {"a", 0, "", true}, {"c", 13, "UPSERT", false},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		r := recs[i]
		if string(r.Key) != w.key {
			t.Fatalf("record %d: key %q, want %q", i, r.Key, w.key)
		}
		if w.tombstone {
			if r.Value != nil || len(r.Headers) != 0 {
				t.Fatalf("record %d: want a tombstone, got value %q headers %v", i, r.Value, r.Headers)
			}
			continue
		}
		e, err := intent.UnmarshalEvent(r.Value)
		if err != nil || e.Version != w.version || e.Op.String() != w.op {
			t.Fatalf("record %d: %+v, %v; want version %d %s", i, e, err, w.version, w.op)
		}
		hdr := map[string]string{}
		for _, h := range r.Headers {
			hdr[h.Key] = string(h.Value)
		}
		if hdr[HeaderOp] != w.op || hdr[HeaderEventID] != intent.EventID("t", []byte(w.key), w.version) {
			t.Fatalf("record %d: headers %v", i, hdr)
		}
	}
	// An empty value is a value, never a tombstone.
	if recs[5].Value == nil {
		t.Fatal("an upsert with an empty value was written as a tombstone")
	}
}

// TestSubscribeFromVersion checks "from v<N>": every event with a version
// above N, none at or below it, in bus order.
func TestSubscribeFromVersion(t *testing.T) {
	t.Parallel()
	b, _ := openBus(t, 2)
	var evs []intent.Event
	for v := uint64(1); v <= 20; v++ {
		op, val := intent.Upsert, []byte{byte(v)}
		if v%5 == 0 {
			op, val = intent.Delete, nil
		}
		evs = append(evs, intent.Event{Table: "t", Key: []byte{byte('a' + v%4)}, Op: op, Version: v, Value: val})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Publish(ctx, "t", evs); err != nil {
		t.Fatal(err)
	}
	svc := NewService(b, func(table string) (int32, bool) { return 2, table == "t" })
	mux := http.NewServeMux()
	_, closeAll := serveEvents(mux, svc, APILimits{})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer closeAll()
	client := wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL)
	for _, after := range []uint64{0, 7, 10, 19} {
		from := "beginning"
		if after > 0 {
			from = "v" + strconv.FormatUint(after, 10)
		}
		sctx, stop := context.WithCancel(ctx)
		stream, err := client.Subscribe(sctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: from}))
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint64]bool{}
		last := map[int32]int64{0: -1, 1: -1}
		for len(got) < int(20-after) && stream.Receive() {
			m := stream.Msg()
			if m.Event == nil {
				continue
			}
			if m.Event.Version <= after {
				t.Fatalf("from %s: got version %d", from, m.Event.Version)
			}
			if m.Offset <= last[m.Partition] {
				t.Fatalf("from %s: partition %d offset %d after %d", from, m.Partition, m.Offset, last[m.Partition])
			}
			last[m.Partition] = m.Offset
			got[m.Event.Version] = true
		}
		stop()
		stream.Close()
		for v := after + 1; v <= 20; v++ {
			if !got[v] {
				t.Fatalf("from %s: version %d missing (got %v)", from, v, got)
			}
		}
	}
}

// TestCursorKeepsFromVersion: a stream started at "v<N>" hands out cursors
// that keep skipping events of version N or below: resuming from one after
// the first event does not deliver the lower versions that came after it
// on the bus (other keys).
func TestCursorKeepsFromVersion(t *testing.T) {
	t.Parallel()
	b, _ := openBus(t, 1)
	var evs []intent.Event
	for i, v := range []uint64{10, 3, 12, 5, 15} {
		evs = append(evs, intent.Event{Table: "t", Key: []byte{byte('a' + i)}, Op: intent.Upsert, Version: v, Value: []byte{byte(v)}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Publish(ctx, "t", evs); err != nil {
		t.Fatal(err)
	}
	client := eventServer(t, b, 1, Snapshots{})
	stream, err := client.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "v8"}))
	if err != nil {
		t.Fatal(err)
	}
	cursor := ""
	for cursor == "" && stream.Receive() {
		if m := stream.Msg(); m.Event != nil {
			if m.Event.Version != 10 {
				t.Fatalf("first event from v8: version %d, want 10", m.Event.Version)
			}
			cursor = m.Cursor
		}
	}
	stream.Close()
	if cursor == "" {
		t.Fatalf("no event from v8: %v", stream.Err())
	}
	got, _ := readToEnd(ctx, t, client, "t", cursor)
	var versions []uint64
	for _, m := range got {
		versions = append(versions, m.Event.Version)
	}
	if !slices.Equal(versions, []uint64{12, 15}) {
		t.Fatalf("resumed from the cursor of version 10: versions %v, want [12 15]", versions)
	}
}
