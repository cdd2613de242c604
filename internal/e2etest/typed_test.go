package e2etest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/schema"
)

// typedValues checks values against the current message type, as the
// server's Validator does against a subject's latest schema: JSON is
// converted, binary checked.
type typedValues struct {
	cur atomic.Pointer[version] // the latest
	// byID: the schemas registered, by id
	byID map[uint32]*schema.Message
}

// version is a registered schema's message type and id.
type version struct {
	msg *schema.Message
	id  uint32
}

func (v *typedValues) Validate(_ context.Context, _ catalog.Table, m *proxy.Mutation) error {
	if m.Delete {
		return nil
	}
	cur := v.cur.Load()
	msg := cur.msg
	if m.JSON {
		b, err := msg.FromJSON(m.Value)
		if err != nil {
			return fmt.Errorf("%w: %w", proxy.ErrInvalid, err)
		}
		m.Value, m.JSON = b, false
	} else if err := msg.Validate(m.Value); err != nil {
		return fmt.Errorf("%w: %w", proxy.ErrInvalid, err)
	}
	m.SchemaID = cur.id
	return nil
}

// EventTypes implements eventbus.Typer as the server does: keys raw, a
// value published under the schema id of its row once it fits it.
func (v *typedValues) EventTypes(context.Context, string) (eventbus.EventTypes, bool, error) {
	return eventbus.EventTypes{Value: func(_ context.Context, written uint32, value []byte) (uint32, []int, error) {
		m := v.byID[written]
		if m == nil {
			return 0, nil, fmt.Errorf("%w: schema id %d is not registered", eventbus.ErrDrift, written)
		}
		if err := m.Validate(value); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", eventbus.ErrDrift, err)
		}
		return written, m.Indexes(), nil
	}}, true, nil
}

// TestInvariantsTyped: the invariants on a typed table whose writers send
// half their values as JSON (converted at the proxy) and half as binary,
// with a compatible schema change mid-stream (a field added; writers use
// it from then on). No write may be refused: every value fits the schema
// of its time.
func TestInvariantsTyped(t *testing.T) {
	t.Parallel()
	compile := func(src string) (*schema.Schema, *schema.Message) {
		s, err := schema.Compile(context.Background(), schema.File{Source: src}, nil, schema.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.MessageType("shop.Order")
		if err != nil {
			t.Fatal(err)
		}
		return s, &m
	}
	s1, v1 := compile(`syntax = "proto3"; package shop; message Order { string id = 1; int64 seq = 2; }`)
	s2, v2 := compile(`syntax = "proto3"; package shop; message Order { string id = 1; int64 seq = 2; string note = 3; }`)
	if msgs := schema.Check(schema.Backward, s2, []schema.Version{{Version: 1, Schema: s1}}); len(msgs) > 0 {
		t.Fatalf("the change is to be compatible: %v", msgs)
	}
	vals := &typedValues{byID: map[uint32]*schema.Message{1: v1, 2: v2}}
	vals.cur.Store(&version{v1, 1})
	var evolved, refused atomic.Bool
	var jsonWrites, binWrites atomic.Int64
	opts := DefaultOptions()
	opts.Table = "typed"
	opts.Validator = refusals{vals, &refused}
	opts.Value = func(key string, w int64, seq int) ([]byte, bool) {
		note := ""
		if evolved.Load() {
			note = fmt.Sprintf(`,"note":"w%d"`, w)
		}
		j := fmt.Sprintf(`{"id":%q,"seq":"%d"%s}`, key, seq, note)
		if seq%2 == 0 {
			jsonWrites.Add(1)
			return []byte(j), true
		}
		b, err := vals.cur.Load().msg.FromJSON([]byte(j))
		if err != nil {
			t.Error(err)
		}
		binWrites.Add(1)
		return b, false
	}
	opts.Disrupt = func(t *testing.T) {
		vals.cur.Store(&version{v2, 2}) // the new version registered ...
		evolved.Store(true)             // ... then writers use its field
	}
	opts.Typer = vals
	byID := map[uint32]int{}
	opts.Events = func(t *testing.T, evs []Event) {
		for _, e := range evs {
			if e.Op == intent.Upsert {
				byID[e.SchemaID]++
			}
		}
	}
	Run(t, openEmbedded, opts)
	if refused.Load() {
		t.Fatal("a value was refused")
	}
	// Values written before the change carry v1's id, after it v2's.
	if byID[1] == 0 || byID[2] == 0 || len(byID) != 2 {
		t.Fatalf("events by schema id %v: want both versions' and no other", byID)
	}
	if jsonWrites.Load() == 0 || binWrites.Load() == 0 || !evolved.Load() {
		t.Fatalf("%d JSON and %d binary values, schema changed %t: the run proves nothing", jsonWrites.Load(), binWrites.Load(), evolved.Load())
	}
}

// refusals notes any refusal of the validator it wraps.
type refusals struct {
	v       proxy.Validator
	refused *atomic.Bool
}

func (r refusals) Validate(ctx context.Context, t catalog.Table, m *proxy.Mutation) error {
	err := r.v.Validate(ctx, t, m)
	if err != nil {
		r.refused.Store(true)
	}
	return err
}
