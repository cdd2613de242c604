package eventbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/schema"
)

// Typed tables' events (DESIGN.md, "Events of typed tables"): what a
// stock Kafka deserializer reads. The record value is the row state
// itself in the Confluent wire format (magic byte 0, the schema id, the
// message indexes, the value's Protobuf bytes), under the schema id the
// row was written with; a delete is a tombstone (null value). The record
// key is the row key in the wire format under the key subject's schema
// when the table has a key type, else the row key as it is. wail's
// metadata is in headers:
//
//	wail.version         decimal
//	wail.op              UPSERT | DELETE
//	wail.event_id        table/hex(key)/version
//	wail.intent_at_us    decimal, microseconds since the Unix epoch
//	wail.resolved_at_us  decimal
//	wail.covered_intents decimal
//	wail.key_format      "confluent" (the key in the wire format) or "raw"
//	traceparent          W3C, on traced events only
//
// No tombstone follows a delete: the delete is one. The record is placed
// by the row key (intentlog.Record.RouteKey), on the partition of the
// key's intents, whatever the key's framing.

// Headers of typed events only (the others are those of every event).
const (
	HeaderIntentAt  = "wail.intent_at_us"
	HeaderResolved  = "wail.resolved_at_us"
	HeaderCovered   = "wail.covered_intents"
	HeaderKeyFormat = "wail.key_format"
)

// Values of HeaderKeyFormat.
const (
	KeyConfluent = "confluent"
	KeyRaw       = "raw"
)

// ErrDrift: a typed table's value does not fit the schema it is to be
// published under (written past validation, or changed by another writer
// of the store): it is never published (the event goes to the
// dead-letter topic: it wraps ErrEncode).
var ErrDrift = errors.New("value does not fit its schema")

// Typer tells how typed tables' events are encoded; the server
// implements it from the schema registry. Without one every event is in
// wail's envelope.
type Typer interface {
	// EventTypes returns the types of table's events; ok false: the
	// table's events are in wail's envelope (an untyped table, or one
	// with a key type only).
	EventTypes(ctx context.Context, table string) (types EventTypes, ok bool, err error)
}

// EventTypes frames a typed table's record keys and values.
type EventTypes struct {
	// KeyID and KeyIndexes frame the record key; KeyID 0: the key is
	// the row key as it is (the table has no key type).
	KeyID      uint32
	KeyIndexes []int
	// Value returns the schema id and message indexes under which a
	// value written with schema id written (0: the row has none: written
	// before rows kept it, or with validation off) is published, having
	// checked that the value is a message of that schema. An error
	// wrapping ErrDrift: it fits none; another: retry.
	Value func(ctx context.Context, written uint32, value []byte) (id uint32, indexes []int, err error)
}

// SetTyper makes typed tables' events use the Confluent wire format.
// Call it before publishing.
func (b *Bus) SetTyper(t Typer) { b.typer = t }

// encodeTyped is Encode for a typed table.
func encodeTyped(ctx context.Context, e *intent.Event, types EventTypes) (*intentlog.Record, error) {
	rec := &intentlog.Record{Key: e.Key, RouteKey: e.Key, Headers: typedHeaders(e, types.KeyID != 0)}
	if types.KeyID != 0 {
		rec.Key = schema.AppendWire(nil, types.KeyID, types.KeyIndexes, e.Key)
	}
	if e.Op == intent.Delete {
		return rec, nil // a tombstone
	}
	id, indexes, err := types.Value(ctx, e.SchemaID, e.Value)
	if errors.Is(err, ErrDrift) {
		return nil, fmt.Errorf("%w: key %q version %d: %w", ErrEncode, e.Key, e.Version, err)
	}
	if err != nil {
		return nil, fmt.Errorf("eventbus: the schema of key %q version %d: %w", e.Key, e.Version, err)
	}
	e.SchemaID = id
	rec.Value = schema.AppendWire(make([]byte, 0, len(e.Value)+6+len(indexes)*5), id, indexes, e.Value)
	return rec, nil
}

func typedHeaders(e *intent.Event, keyWire bool) []intentlog.Header {
	kf := KeyRaw
	if keyWire {
		kf = KeyConfluent
	}
	h := []intentlog.Header{
		{Key: HeaderVersion, Value: strconv.AppendUint(nil, e.Version, 10)},
		{Key: HeaderOp, Value: []byte(e.Op.String())},
		{Key: HeaderEventID, Value: []byte(intent.EventID(e.Table, e.Key, e.Version))},
		{Key: HeaderIntentAt, Value: strconv.AppendInt(nil, e.IntentAt.UnixMicro(), 10)},
		{Key: HeaderResolved, Value: strconv.AppendInt(nil, e.ResolvedAt.UnixMicro(), 10)},
		{Key: HeaderCovered, Value: strconv.AppendUint(nil, uint64(e.CoveredIntents), 10)},
		{Key: HeaderKeyFormat, Value: []byte(kf)},
	}
	if e.Trace != "" {
		h = append(h, intentlog.Header{Key: HeaderTrace, Value: []byte(e.Trace)})
	}
	return h
}

// typedSize is an upper bound of the bytes of a typed event's record
// (typedHeaders, both framings at their widest), framed. The resolver
// sizes every event it publishes, so nothing here allocates.
func typedSize(e *intent.Event) int {
	const wire = 5 + 1 + maxIndexBytes // magic, id, indexes
	hs, n := typedHeaderLens(e)
	value := 0
	if e.Op != intent.Delete {
		value = wire + len(e.Value)
	}
	return intentlog.FramedSize(wire+len(e.Key), value, hs[:n]...)
}

// typedHeaderLens returns the key and value lengths of typedHeaders(e,
// true), its times at their widest (20 bytes), without building them
// (TestTypedHeaderLens holds the two together).
func typedHeaderLens(e *intent.Event) (hs [8][2]int, n int) {
	hs = [8][2]int{
		{len(HeaderVersion), decimalLen(e.Version)},
		{len(HeaderOp), len(e.Op.String())},
		{len(HeaderEventID), intent.EventIDLen(e.Table, e.Key, e.Version)},
		{len(HeaderIntentAt), 20},
		{len(HeaderResolved), 20},
		{len(HeaderCovered), decimalLen(uint64(e.CoveredIntents))},
		{len(HeaderKeyFormat), len(KeyConfluent)},
	}
	n = 7
	if e.Trace != "" {
		hs[n] = [2]int{len(HeaderTrace), len(e.Trace)}
		n++
	}
	return hs, n
}

// decimalLen is the length of v in decimal.
func decimalLen(v uint64) int {
	var b [20]byte
	return len(strconv.AppendUint(b[:0], v, 10))
}

// maxIndexBytes bounds the message indexes of a typed key or value that
// Size counts: 8 levels of nesting with indexes below 2^20 (zigzag
// varints of at most 3 bytes), and their count. A deeper or later message
// makes a record Size underestimates by a few bytes; the log's own limit
// still refuses it whole, as ErrTooLarge.
const maxIndexBytes = 1 + 8*3

// Decode reads an event record of either form: wail's envelope (a
// wail.v1.ChangeEvent) or a typed table's (the Confluent wire format and
// headers); the event's Key and Value are the row's, unframed, and
// SchemaID the value's schema. ok is false for a record that is not an
// event: the tombstone that follows an envelope's delete (no headers).
// An error: a record that claims to be an event and is not.
func Decode(r *intentlog.Record) (e intent.Event, ok bool, err error) {
	op := header(r, HeaderOp)
	switch {
	case r.Value == nil && op == nil:
		return intent.Event{}, false, nil // an envelope delete's tombstone
	case isEnvelope(r):
		e, err := intent.UnmarshalEvent(r.Value)
		return e, err == nil, err
	}
	e, err = decodeTyped(r, string(op))
	return e, err == nil, err
}

// isEnvelope reports whether r's value is in wail's envelope (a
// ChangeEvent, whose first byte is a field's tag, never 0), not in a typed
// table's Confluent wire format (first byte 0).
func isEnvelope(r *intentlog.Record) bool {
	return r.Value != nil && (len(r.Value) == 0 || r.Value[0] != 0)
}

func decodeTyped(r *intentlog.Record, op string) (intent.Event, error) {
	bad := func(what string, err error) (intent.Event, error) {
		return intent.Event{}, fmt.Errorf("decode typed event: %s: %w", what, err)
	}
	var e intent.Event
	switch op {
	case intent.Upsert.String():
		e.Op = intent.Upsert
	case intent.Delete.String():
		e.Op = intent.Delete
	default:
		return bad("op", fmt.Errorf("%q", op))
	}
	var err error
	if e.Version, err = strconv.ParseUint(string(header(r, HeaderVersion)), 10, 64); err != nil || e.Version == 0 || e.Version > intent.MaxVersion {
		return bad("version", fmt.Errorf("%q", header(r, HeaderVersion)))
	}
	id := string(header(r, HeaderEventID))
	table, _, found := strings.Cut(id, "/")
	if !found || !utf8.ValidString(table) {
		// (a ChangeEvent's text fields must be UTF-8: an event that
		// cannot be encoded failed every stream that read it, for good)
		return bad("event id", fmt.Errorf("%q", id))
	}
	e.Table = table
	if string(header(r, HeaderKeyFormat)) == KeyConfluent {
		if _, _, _, err = schema.ParseWire(r.Key); err != nil {
			return bad("key", err)
		}
	}
	e.Key = bytes.Clone(RowKey(r))
	if e.Op == intent.Upsert {
		id, _, payload, err := schema.ParseWire(r.Value)
		if err != nil {
			return bad("value", err)
		}
		e.SchemaID, e.Value = id, bytes.Clone(payload)
		if e.Value == nil {
			e.Value = []byte{}
		}
	} else if r.Value != nil {
		return bad("value", errors.New("a delete with a value"))
	}
	micros := func(h string) time.Time {
		n, _ := strconv.ParseInt(string(header(r, h)), 10, 64)
		return time.UnixMicro(n)
	}
	e.IntentAt, e.ResolvedAt = micros(HeaderIntentAt), micros(HeaderResolved)
	covered, _ := strconv.ParseUint(string(header(r, HeaderCovered)), 10, 32)
	e.CoveredIntents = uint32(covered)
	if e.Trace = string(header(r, HeaderTrace)); !utf8.ValidString(e.Trace) {
		return bad("traceparent", fmt.Errorf("%q", e.Trace))
	}
	return e, nil
}

// RowKey is the row key of an event record: its key, unframed when it is
// a typed key in the wire format.
func RowKey(r *intentlog.Record) []byte {
	if string(header(r, HeaderKeyFormat)) == KeyConfluent {
		if _, _, k, err := schema.ParseWire(r.Key); err == nil {
			return k
		}
	}
	return r.Key
}

// header returns the value of a record's header (nil: absent).
func header(r *intentlog.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			if h.Value == nil {
				return []byte{}
			}
			return h.Value
		}
	}
	return nil
}
