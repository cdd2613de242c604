package eventbus

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// widestTyper frames keys and values at the widest the size bound counts:
// schema id 2^32-1 and 8 message indexes of 2^20-1 (zigzag varints of 3
// bytes each).
type widestTyper struct{}

func (widestTyper) EventTypes(context.Context, string) (EventTypes, bool, error) {
	idx := []int{1<<20 - 1, 1<<20 - 1, 1<<20 - 1, 1<<20 - 1, 1<<20 - 1, 1<<20 - 1, 1<<20 - 1, 1<<20 - 1}
	return EventTypes{KeyID: math.MaxUint32, KeyIndexes: idx, Value: func(context.Context, uint32, []byte) (uint32, []int, error) {
		return math.MaxUint32, idx, nil
	}}, true, nil
}

// firstMessageTyper frames values under the schema's first message
// (indexes [0], written as the single byte 0).
type firstMessageTyper struct{}

func (firstMessageTyper) EventTypes(context.Context, string) (EventTypes, bool, error) {
	return EventTypes{Value: func(context.Context, uint32, []byte) (uint32, []int, error) { return 3, []int{0}, nil }}, true, nil
}

// TestTypedSizeBound: typedSize bounds the record of a typed event whose
// key and value are framed at their widest (8 message indexes of 3
// bytes, the 4-byte schema id), its times and numbers at their widest too,
// and it is tight: one byte over per framing at most, so a bound that
// drops a term of the framing, the key or the value fails.
func TestTypedSizeBound(t *testing.T) {
	t.Parallel()
	widest := time.UnixMicro(math.MinInt64) // 20 decimal characters
	for _, tc := range []struct {
		name string
		e    intent.Event
	}{
		{"upsert, long value", intent.Event{Table: strings.Repeat("t", 63), Key: []byte("k"), Op: intent.Upsert, Version: math.MaxUint64,
			Value: []byte(strings.Repeat("v", 300)), IntentAt: widest, ResolvedAt: widest, CoveredIntents: math.MaxUint32, Trace: intent.WidestTrace}},
		{"upsert, long key", intent.Event{Table: "t", Key: []byte(strings.Repeat("k", 300)), Op: intent.Upsert, Version: 1,
			Value: []byte("v"), IntentAt: widest, ResolvedAt: widest}},
		{"upsert, empty value", intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte{}, IntentAt: widest, ResolvedAt: widest}},
		{"delete", intent.Event{Table: "t", Key: []byte(strings.Repeat("k", 300)), Op: intent.Delete, Version: math.MaxUint64, IntentAt: widest, ResolvedAt: widest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			_, recs, err := (&Bus{typer: widestTyper{}}).Records(t.Context(), e.Table, []intent.Event{e})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			got, bound := kafkaWidest(recs[0]), typedSize(&tc.e)
			framings := 1 // the key's
			if e.Op != intent.Delete {
				framings++
			}
			if bound < got || bound > got+framings {
				t.Errorf("typedSize = %d for a record of %d at its widest, want %d to %d", bound, got, got, got+framings)
			}
		})
	}
}

// TestTypedEmptyValue: an empty value under a schema's first message is
// the 6 bytes of its framing alone, and decodes back to an empty value.
func TestTypedEmptyValue(t *testing.T) {
	t.Parallel()
	e := intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 5, Value: []byte{}}
	_, recs, err := (&Bus{typer: firstMessageTyper{}}).Records(t.Context(), "t", []intent.Event{e})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 3, 0}; string(recs[0].Value) != string(want) {
		t.Fatalf("value % x, want % x", recs[0].Value, want)
	}
	d, ok, err := Decode(recs[0])
	if err != nil || !ok || d.Value == nil || len(d.Value) != 0 || d.SchemaID != 3 || d.Version != 5 {
		t.Fatalf("decoded %+v, %v, %v; want version 5, an empty value under schema 3", d, ok, err)
	}
}
