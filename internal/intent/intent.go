// Package intent holds the two records wail writes to its logs, the Intent
// (on the intent log) and the Event (on the event bus), as plain Go values,
// and their wire encoding: the protobuf messages wail.v1.Intent and
// wail.v1.ChangeEvent in standard binary form (see api/wail/v1/wail.proto for
// the field-by-field format). The log record key is always the row key
// (a typed table's events, which package eventbus encodes itself, may carry
// it in the Confluent wire format: eventbus/typed.go).
package intent

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"google.golang.org/protobuf/proto"
)

// Op is what an intent or event does to a key.
type Op uint8

// Ops. The values match wail.v1.Op.
const (
	Upsert Op = 1
	Delete Op = 2
	Abort  Op = 3
)

func (o Op) String() string {
	switch o {
	case Upsert:
		return "UPSERT"
	case Delete:
		return "DELETE"
	case Abort:
		return "ABORT"
	}
	return "OP(" + strconv.Itoa(int(o)) + ")"
}

// Topic is the intent log topic of a table.
func Topic(table string) string { return "wail.intents." + table }

// Intent says that a key of a table is about to change to a version.
type Intent struct {
	Table     string
	Key       []byte
	Op        Op
	Version   uint64
	ID        string
	ProxyID   uint32
	CreatedAt time.Time
	// PublishedFloor, when not 0, is a version at or below the key's last
	// event on the bus when the intent was logged (reconcile and redrive set
	// it): the resolver takes it as the key's last published version unless
	// it remembers a higher one. NoEventFloor when the bus had no event of
	// the key: not 0, so that the resolver knows the intent for one of
	// reconcile or redrive (resolver/catchup.go).
	PublishedFloor uint64
	// Trace is the W3C traceparent of the write, when it is traced (see
	// package telemetry): the resolver's spans of its event join it.
	Trace string
}

// MaxVersion is the highest version a clock stamps (hlc: bit 63 is always
// 0). A record of the intent or event log with a higher one was forged or
// damaged, and does not decode: taken as a key's version, it would be above
// every later write of the key.
const MaxVersion = 1<<63 - 1

// MaxKeyBytes is the longest key of an intent: the most
// limits.max_key_bytes allows.
const MaxKeyBytes = 64 << 10

// NoEventFloor is the PublishedFloor of an intent of reconcile or redrive
// whose key had no event on the bus: no version is that low, so it only
// marks the intent.
const NoEventFloor = 1

// Event is a final change event: the state of a key at a version.
type Event struct {
	Table          string
	Key            []byte
	Op             Op // Upsert or Delete
	Version        uint64
	Value          []byte
	IntentAt       time.Time
	ResolvedAt     time.Time
	CoveredIntents uint32
	SchemaID       uint32
	// Trace is the W3C traceparent of the span that published the event
	// (empty: no write it covers was traced).
	Trace string
}

// WidestTrace is as long as any Trace wail writes (the traceparent of
// version 00): for upper bounds of a record's size.
const WidestTrace = "00-00000000000000000000000000000000-0000000000000000-00"

// EventID is the stable id of an event: "table/hex(key)/version".
func EventID(table string, key []byte, version uint64) string {
	return string(appendEventID(make([]byte, 0, EventIDLen(table, key, version)), table, key, version))
}

// EventIDLen is len(EventID(table, key, version)), without building it.
func EventIDLen(table string, key []byte, version uint64) int {
	var b [20]byte
	return len(table) + 1 + hex.EncodedLen(len(key)) + 1 + len(strconv.AppendUint(b[:0], version, 10))
}

// Proto returns the intent as a wail.v1.Intent.
func (in *Intent) Proto() *wailv1.Intent {
	return &wailv1.Intent{
		Table:          in.Table,
		Key:            in.Key,
		Op:             wailv1.Op(in.Op),
		Version:        in.Version,
		IntentId:       in.ID,
		ProxyId:        in.ProxyID,
		CreatedAtUs:    in.CreatedAt.UnixMicro(),
		PublishedFloor: in.PublishedFloor,
		Traceparent:    in.Trace,
	}
}

// UnmarshalIntent decodes a wail.v1.Intent and checks that it makes sense.
// The common, well-formed encoding is decoded by hand (decodeIntent);
// anything else by proto.Unmarshal, which gives protobuf's own errors.
func UnmarshalIntent(b []byte) (Intent, error) {
	in, op, ok := decodeIntent(b)
	if !ok {
		var m wailv1.Intent
		if err := proto.Unmarshal(b, &m); err != nil {
			return Intent{}, fmt.Errorf("decode intent: %w", err)
		}
		in, op = intentFromProto(&m), int32(m.Op)
	}
	switch {
	case in.Op != Upsert && in.Op != Delete && in.Op != Abort:
		return Intent{}, fmt.Errorf("decode intent: invalid op %d", op)
	case in.Version == 0:
		return Intent{}, fmt.Errorf("decode intent: zero version")
	case len(in.Key) == 0:
		return Intent{}, fmt.Errorf("decode intent: empty key")
	case len(in.Key) > MaxKeyBytes:
		// No store wail writes keeps one; its dead letter (key and intent)
		// could exceed the dead-letter topic's record limit, and a letter
		// is written again until it lands.
		return Intent{}, fmt.Errorf("decode intent: key of %d bytes, over %d", len(in.Key), MaxKeyBytes)
	case in.Version > MaxVersion:
		// A proxy that observed it at start would stamp versions that
		// wrap to 0.
		return Intent{}, fmt.Errorf("decode intent: version %d has bit 63 set", in.Version)
	case in.PublishedFloor >= in.Version:
		// Reconcile and redrive log a floor below the stored version (0:
		// none); one at or above it would hide the key's later writes.
		return Intent{}, fmt.Errorf("decode intent: published floor %d not below version %d", in.PublishedFloor, in.Version)
	}
	return in, nil
}

func intentFromProto(m *wailv1.Intent) Intent {
	return Intent{
		Table:     m.Table,
		Key:       m.Key,
		Op:        Op(m.Op),
		Version:   m.Version,
		ID:        m.IntentId,
		ProxyID:   m.ProxyId,
		CreatedAt: time.UnixMicro(m.CreatedAtUs),

		PublishedFloor: m.PublishedFloor,
		Trace:          m.Traceparent,
	}
}

// Proto returns the event as a wail.v1.ChangeEvent.
func (e *Event) Proto() *wailv1.ChangeEvent {
	return &wailv1.ChangeEvent{
		Table:          e.Table,
		Key:            e.Key,
		Op:             wailv1.Op(e.Op),
		Version:        e.Version,
		Value:          e.Value,
		IntentAtUs:     e.IntentAt.UnixMicro(),
		ResolvedAtUs:   e.ResolvedAt.UnixMicro(),
		CoveredIntents: e.CoveredIntents,
		EventId:        EventID(e.Table, e.Key, e.Version),
		SchemaId:       e.SchemaID,
		Traceparent:    e.Trace,
	}
}

// EventFromProto converts a wail.v1.ChangeEvent.
func EventFromProto(m *wailv1.ChangeEvent) Event {
	return Event{
		Table:          m.Table,
		Key:            m.Key,
		Op:             Op(m.Op),
		Version:        m.Version,
		Value:          m.Value,
		IntentAt:       time.UnixMicro(m.IntentAtUs),
		ResolvedAt:     time.UnixMicro(m.ResolvedAtUs),
		CoveredIntents: m.CoveredIntents,
		SchemaID:       m.SchemaId,
		Trace:          m.Traceparent,
	}
}

// UnmarshalEvent decodes a wail.v1.ChangeEvent and checks that it makes
// sense. The common, well-formed encoding is decoded by hand
// (decodeEvent); anything else by proto.Unmarshal, which gives protobuf's
// own errors.
func UnmarshalEvent(b []byte) (Event, error) {
	e, op, ok := decodeEvent(b)
	if !ok {
		var m wailv1.ChangeEvent
		if err := proto.Unmarshal(b, &m); err != nil {
			return Event{}, fmt.Errorf("decode event: %w", err)
		}
		e, op = EventFromProto(&m), int32(m.Op)
	}
	switch {
	case e.Op != Upsert && e.Op != Delete:
		return Event{}, fmt.Errorf("decode event: invalid op %d", op)
	case e.Version == 0:
		return Event{}, fmt.Errorf("decode event: zero version")
	case e.Version > MaxVersion:
		return Event{}, fmt.Errorf("decode event: version %d has bit 63 set", e.Version)
	}
	return e, nil
}
