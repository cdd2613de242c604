package eventbus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/schema"
)

// validatingTyper frames values as the server does, checking each value
// against its schema first (the drift guard: server/events.go), without
// the registry's cache lookups.
type validatingTyper struct{ msg schema.Message }

func (v validatingTyper) EventTypes(context.Context, string) (EventTypes, bool, error) {
	return EventTypes{KeyID: 1, KeyIndexes: []int{0}, Value: func(_ context.Context, written uint32, value []byte) (uint32, []int, error) {
		if err := v.msg.Validate(value); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrDrift, err)
		}
		return written, v.msg.Indexes(), nil
	}}, true, nil
}

// BenchmarkRecords is the cost of encoding a batch of 100 events on the
// publish path: wail's envelope (untyped tables), the Confluent wire
// format (framing only), and the wire format with each value checked
// against its schema (what a typed table's publish does). One op is one
// event.
func BenchmarkRecords(b *testing.B) {
	s, err := schema.Compile(context.Background(), schema.File{Source: `syntax = "proto3"; package shop;
message Order { string id = 1; int64 cents = 2; repeated Line lines = 3; string note = 4; }
message Line { string sku = 1; int32 qty = 2; }`}, nil, schema.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	msg, err := s.MessageType("shop.Order")
	if err != nil {
		b.Fatal(err)
	}
	line := protowire.AppendVarint(protowire.AppendTag(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "tea"), 2, protowire.VarintType), 2)
	value := protowire.AppendBytes(protowire.AppendTag(protowire.AppendVarint(protowire.AppendTag(
		protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "o-12345"), 2, protowire.VarintType), 1250), 3, protowire.BytesType), line)
	events := make([]intent.Event, 100)
	for i := range events {
		events[i] = intent.Event{Table: "orders", Key: fmt.Appendf(nil, "order-%06d", i), Op: intent.Upsert, Version: uint64(1e18) + uint64(i),
			Value: value, SchemaID: 3, IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 1}
	}
	for _, tc := range []struct {
		name string
		bus  *Bus
	}{
		{"envelope", New(nil)},
		{"typed-framing", &Bus{typer: fixedTyper{7}}},
		{"typed-validated", &Bus{typer: validatingTyper{msg}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i += len(events) {
				if _, _, err := tc.bus.Records(context.Background(), "orders", events); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
