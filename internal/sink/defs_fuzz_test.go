package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestStoredBatchBound: a definition read from the store is not checked
// as a create checks it, and max_batch_events may be 0 (an entry written
// without it: another version, a hand edit) or negative. The runner cut
// batches at that bound: 0 indexed the last record of an empty batch, a
// negative one sliced below 0, and either panicked the process at the
// first event. Now a bound out of 1..MaxMaxBatch delivers in batches of
// the default (0) or of 1..MaxMaxBatch.
func TestStoredBatchBound(t *testing.T) {
	for _, n := range []int32{0, -1, MaxMaxBatch + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := newFixture(t, 1)
			ep := newEndpoint(t, "")
			def := WithDefaults(&wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning"})
			def.MaxBatchEvents = n
			b, err := proto.Marshal(&wailv1.SinkList{Sinks: []*wailv1.Sink{def}})
			if err != nil {
				t.Fatal(err)
			}
			f.cat.m[CatalogEntry] = b
			for v := range uint64(5) {
				f.publish(event("k", v+1))
			}
			m := f.manager()
			defer m.Close()
			waitFor(t, "5 events delivered", 10*time.Second, func() bool { return len(ep.events()) >= 5 })
		})
	}
}

// FuzzSinkDefs: the sink definitions are one entry of the store's
// catalog, written by other processes (other versions, a hand edit):
// whatever it holds, reading it does not panic, every definition read
// gives a batch bound the runner can cut by, and the entry encodes back
// to one that reads the same.
func FuzzSinkDefs(f *testing.F) {
	for _, l := range [][]*wailv1.Sink{
		{WithDefaults(&wailv1.Sink{Table: "t", Name: "a", Url: "https://example.com/hook", Secret: "s"})},
		{WithDefaults(&wailv1.Sink{Table: "t", Name: "a", Url: "https://example.com/hook", Start: "snapshot", Paused: true}),
			{Table: "u", Name: "b", Url: "http://h/x", MaxBatchEvents: -5, TimeoutMs: -1}},
	} {
		b, err := proto.Marshal(&wailv1.SinkList{Sinks: l})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), nil))
	f.Fuzz(func(t *testing.T, spec []byte) {
		c := &memCatalog{m: map[string][]byte{CatalogEntry: spec}}
		sinks, raw, err := newDefs(c).load(context.Background())
		if err != nil {
			return
		}
		for _, s := range sinks {
			if n := batchLen(s); n < 1 || n > MaxMaxBatch {
				t.Fatalf("batch bound %d from max_batch_events %d", n, s.MaxBatchEvents)
			}
			_ = Public(s)
			_ = Validate(WithDefaults(s))
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&wailv1.SinkList{Sinks: sinks})
		if err != nil {
			t.Fatal(err)
		}
		var again wailv1.SinkList
		if err := proto.Unmarshal(b, &again); err != nil || !proto.Equal(&again, &wailv1.SinkList{Sinks: sinks}) {
			t.Fatalf("round trip: %v", err)
		}
		_ = raw
	})
}

// TestStoredDefinitionDefaults: a definition read from the store without
// the settings a create fills in (an entry written by another version, or
// by hand) runs with their defaults. Before, timeout_ms 0 made every
// request's deadline pass before it was sent and max_retry_ms 0 gave up
// at once: every event was dead-lettered, none delivered.
func TestStoredDefinitionDefaults(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	def := &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning"}
	b, err := proto.Marshal(&wailv1.SinkList{Sinks: []*wailv1.Sink{def}})
	if err != nil {
		t.Fatal(err)
	}
	f.cat.m[CatalogEntry] = b
	for v := range uint64(5) {
		f.publish(event("k", v+1))
	}
	m := f.manager()
	defer m.Close()
	waitFor(t, "5 events delivered", 10*time.Second, func() bool { return len(ep.events()) >= 5 })
	if evs, _ := f.deadLetters(m, "s"); len(evs) != 0 {
		t.Fatalf("%d events dead-lettered", len(evs))
	}
}
