package bench

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// seen is what eachEvent reports of one event.
type seen struct {
	Table      string
	Key        string
	Version    uint64
	ResolvedUs int64
}

// collect runs eachEvent over b.
func collect(b []byte) ([]seen, error) {
	var got []seen
	err := eachEvent(b, func(ev *eventFields) {
		got = append(got, seen{string(ev.table), string(ev.key), ev.version, ev.resolvedUs})
	})
	return got, err
}

// want is what the generated code decodes of m, in the order a server
// sends it (a StreamedEvent without its event carries nothing to match).
func want(m *wailv1.SubscribeResponse) []seen {
	var out []seen
	add := func(e *wailv1.ChangeEvent) {
		out = append(out, seen{e.GetTable(), string(e.GetKey()), e.GetVersion(), e.GetResolvedAtUs()})
	}
	if e := m.GetEvent(); e != nil {
		add(e)
	}
	for _, se := range m.GetEvents() {
		if e := se.GetEvent(); e != nil {
			add(e)
		}
	}
	return out
}

// full is an event with every field set, so that the decoder skips those
// it does not read.
func full(key string, version uint64) *wailv1.ChangeEvent {
	return &wailv1.ChangeEvent{
		Table: "orders", Key: []byte(key), Op: wailv1.Op_OP_UPSERT, Version: version,
		Value: []byte("a value"), IntentAtUs: 1700000000000000, ResolvedAtUs: 1700000000000123,
		CoveredIntents: 3, EventId: "orders/3/17", SchemaId: 9, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
}

func TestEachEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  *wailv1.SubscribeResponse
	}{
		{"one event", &wailv1.SubscribeResponse{Event: full("k1", 5), Partition: 3, Offset: 17, Cursor: "c1"}},
		{"a batch", &wailv1.SubscribeResponse{Cursor: "c2", Events: []*wailv1.StreamedEvent{
			{Event: full("k1", 5), Partition: 1, Offset: 2},
			{Event: full("k2", 1<<62), Partition: 7, Offset: 1 << 40, Snapshot: true},
			{Event: &wailv1.ChangeEvent{Table: "orders", Key: []byte{}, Op: wailv1.Op_OP_DELETE}},
		}}},
		{"a cursor only", &wailv1.SubscribeResponse{Cursor: "c3"}},
		{"an empty message", &wailv1.SubscribeResponse{}},
		{"a streamed event without its event", &wailv1.SubscribeResponse{Events: []*wailv1.StreamedEvent{{Partition: 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			// Fields the schema does not know are skipped too.
			b = protowire.AppendTag(b, 99, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, 7)
			got, err := collect(b)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(tc.msg); !reflect.DeepEqual(got, w) {
				t.Errorf("got %+v, want %+v", got, w)
			}
		})
	}
}

func TestEachEventMalformed(t *testing.T) {
	good, err := proto.Marshal(&wailv1.SubscribeResponse{Events: []*wailv1.StreamedEvent{{Event: full("k", 1)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{
		good[:len(good)-1],       // truncated inside the event
		good[:1],                 // a tag without its length
		{0x32, 0x05, 0x0a, 0x09}, // a StreamedEvent whose event runs past it
		{0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // an 11-byte varint
		{0x00}, // field number 0
	} {
		if _, err := collect(b); !errors.Is(err, errMalformed) {
			t.Errorf("% x: %v, want errMalformed", b, err)
		}
		if proto.Unmarshal(b, new(wailv1.SubscribeResponse)) == nil {
			t.Errorf("% x: protobuf decodes it: not a malformed case", b)
		}
	}
}

// TestEachEventAllocs: reading a message of 1,000 events allocates
// nothing per event.
func TestEachEventAllocs(t *testing.T) {
	m := &wailv1.SubscribeResponse{}
	for i := range 1000 {
		m.Events = append(m.Events, &wailv1.StreamedEvent{Event: full(fmt.Sprint("key-", i), uint64(i+1)), Partition: int32(i % 8), Offset: int64(i)})
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	count := func(*eventFields) { n++ }
	if a := testing.AllocsPerRun(10, func() {
		if err := eachEvent(b, count); err != nil {
			t.Fatal(err)
		}
	}); a > 2 {
		t.Errorf("%v allocations for a message of 1,000 events, want at most 2", a)
	}
	if n != 11*1000 {
		t.Errorf("%d events over 11 runs, want 11,000", n)
	}
}

// FuzzEachEvent: eachEvent never panics, and reads what the generated code
// reads from every message protobuf accepts, once encoded as a server
// encodes it.
func FuzzEachEvent(f *testing.F) {
	for _, m := range []*wailv1.SubscribeResponse{
		{Event: full("k1", 5), Cursor: "c"},
		{Events: []*wailv1.StreamedEvent{{Event: full("k1", 5)}, {Event: full("k2", 6), Snapshot: true}}},
		{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = collect(b) // must not panic
		m := new(wailv1.SubscribeResponse)
		if proto.Unmarshal(b, m) != nil {
			return
		}
		enc, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := collect(enc)
		if err != nil {
			t.Fatalf("protobuf's own encoding of %v: %v", m, err)
		}
		if w := want(m); (len(got) > 0 || len(w) > 0) && !reflect.DeepEqual(got, w) {
			t.Errorf("%v: got %+v, want %+v", m, got, w)
		}
	})
}
