package intent

import (
	"bytes"
	"encoding/hex"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	goldenIntent = Intent{
		Table: "orders", Key: []byte("o-42"), Op: Upsert, Version: 228014658021236743,
		ID: "7-228014658021236743", ProxyID: 7, CreatedAt: time.UnixMicro(1763700000123456),
	}
	goldenEvent = Event{
		Table: "orders", Key: []byte("o-42"), Op: Upsert, Version: 228014658021236743,
		Value: []byte(`{"status":"paid"}`), IntentAt: time.UnixMicro(1763700000123456),
		ResolvedAt: time.UnixMicro(1763700000125000), CoveredIntents: 3,
	}
)

// golden compares b with testdata/name (hex, 32 bytes a line) or rewrites it.
func golden(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var sb strings.Builder
	for i := 0; i < len(b); i += 32 {
		sb.WriteString(hex.EncodeToString(b[i:min(i+32, len(b))]) + "\n")
	}
	if *update {
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if sb.String() != string(want) {
		t.Fatalf("wire format of %s changed:\n got %s\nwant %s", name, sb.String(), want)
	}
}

func TestIntentWireFormat(t *testing.T) {
	t.Parallel()
	b, err := goldenIntent.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "intent.golden", b)
	got, err := UnmarshalIntent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Table != goldenIntent.Table || !bytes.Equal(got.Key, goldenIntent.Key) || got.Op != goldenIntent.Op ||
		got.Version != goldenIntent.Version || got.ID != goldenIntent.ID || got.ProxyID != goldenIntent.ProxyID ||
		!got.CreatedAt.Equal(goldenIntent.CreatedAt) {
		t.Fatalf("round trip: %+v", got)
	}
}

// TestReconcileIntentWireFormat pins an intent with a published floor, as
// reconcile and dead-letter redrive log them.
func TestReconcileIntentWireFormat(t *testing.T) {
	t.Parallel()
	in := goldenIntent
	in.ID, in.PublishedFloor = "reconcile-228014658021236743", 228014658021236000
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "intent_floor.golden", b)
	got, err := UnmarshalIntent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.PublishedFloor != in.PublishedFloor || got.Version != in.Version || got.ID != in.ID {
		t.Fatalf("round trip: %+v", got)
	}
	// The floor is field 8, a varint: tag 0x40.
	if !bytes.Contains(b, []byte{0x40}) {
		t.Fatal("no field 8 in the encoding")
	}
}

func TestEventWireFormat(t *testing.T) {
	t.Parallel()
	b, err := goldenEvent.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "event.golden", b)
	got, err := UnmarshalEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != goldenEvent.Version || string(got.Value) != string(goldenEvent.Value) || got.CoveredIntents != 3 ||
		!got.ResolvedAt.Equal(goldenEvent.ResolvedAt) {
		t.Fatalf("round trip: %+v", got)
	}
	if id := EventID("orders", []byte("o-42"), 5); id != "orders/6f2d3432/5" {
		t.Fatalf("EventID = %q", id)
	}
}

// TestTracedWireFormat pins an intent and an event that carry a trace
// context (field 9 of the intent, 11 of the event); the encodings of
// untraced ones (the goldens above) are unchanged and still decode.
func TestTracedWireFormat(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := goldenIntent
	in.Trace = tp
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "intent_trace.golden", b)
	got, err := UnmarshalIntent(b)
	if err != nil || got.Trace != tp || got.Version != in.Version {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	e := goldenEvent
	e.Trace = tp
	if b, err = e.Marshal(); err != nil {
		t.Fatal(err)
	}
	golden(t, "event_trace.golden", b)
	ge, err := UnmarshalEvent(b)
	if err != nil || ge.Trace != tp || ge.Version != e.Version {
		t.Fatalf("round trip: %+v, %v", ge, err)
	}
	if len(tp) != len(WidestTrace) {
		t.Fatalf("WidestTrace is %d bytes, a traceparent %d", len(WidestTrace), len(tp))
	}
	for _, name := range []string{"intent.golden", "intent_floor.golden"} {
		if in, err := UnmarshalIntent(readGolden(t, name)); err != nil || in.Trace != "" {
			t.Errorf("%s: %+v, %v", name, in, err)
		}
	}
	if e, err := UnmarshalEvent(readGolden(t, "event.golden")); err != nil || e.Trace != "" {
		t.Errorf("event.golden: %+v, %v", e, err)
	}
}

// readGolden returns the bytes of a golden file.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	h, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(string(h), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalRejectsNonsense(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name string
		in   Intent
	}{
		{"no op", Intent{Key: []byte("k"), Version: 1}},
		{"no version", Intent{Key: []byte("k"), Op: Upsert}},
		{"no key", Intent{Op: Delete, Version: 1}},
	}
	for _, tc := range bad {
		b, _ := tc.in.Marshal()
		if _, err := UnmarshalIntent(b); err == nil {
			t.Errorf("%s: decoded without error", tc.name)
		}
	}
	if _, err := UnmarshalIntent([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage decoded without error")
	}
}

func FuzzUnmarshalIntent(f *testing.F) {
	b, _ := goldenIntent.Marshal()
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := UnmarshalIntent(data)
		if err != nil {
			return
		}
		again, err := in.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		in2, err := UnmarshalIntent(again)
		if err != nil || in2.Version != in.Version || in2.Op != in.Op || !bytes.Equal(in2.Key, in.Key) {
			t.Fatalf("re-encoding changed the intent: %+v vs %+v (%v)", in, in2, err)
		}
	})
}

func FuzzUnmarshalEvent(f *testing.F) {
	b, _ := goldenEvent.Marshal()
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := UnmarshalEvent(data)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		e2, err := UnmarshalEvent(again)
		if err != nil || e2.Version != e.Version || e2.Op != e.Op || !bytes.Equal(e2.Value, e.Value) {
			t.Fatalf("re-encoding changed the event: %+v vs %+v (%v)", e, e2, err)
		}
	})
}

// TestEventIDLen: EventIDLen is the length of EventID.
func TestEventIDLen(t *testing.T) {
	for _, c := range []struct {
		table   string
		key     []byte
		version uint64
	}{
		{"", nil, 0},
		{"t", []byte("k"), 9},
		{"orders", []byte("\x00\xff order"), 10},
		{"orders", make([]byte, 4096), 1<<64 - 1},
	} {
		if got, want := EventIDLen(c.table, c.key, c.version), len(EventID(c.table, c.key, c.version)); got != want {
			t.Errorf("EventIDLen(%q, %q, %d) = %d, want %d", c.table, c.key, c.version, got, want)
		}
	}
}

// TestUnmarshalIntentRefusesImpossible refuses what no proxy, reconcile or
// redrive logs (resolver.TestPoisonIntentsSkipped).
func TestUnmarshalIntentRefusesImpossible(t *testing.T) {
	t.Parallel()
	for _, in := range []Intent{
		{Table: "t", Key: []byte("a"), Op: Upsert, Version: 5, PublishedFloor: 5},
		{Table: "t", Key: []byte("a"), Op: Upsert, Version: 5, PublishedFloor: math.MaxUint64},
		{Table: "t", Key: []byte("a"), Op: Upsert, Version: 1 << 63},
		{Table: "t", Key: bytes.Repeat([]byte("k"), MaxKeyBytes+1), Op: Upsert, Version: 5},
	} {
		b, err := in.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalIntent(b); err == nil {
			t.Errorf("version %d floor %d: decoded", in.Version, in.PublishedFloor)
		}
	}
}
