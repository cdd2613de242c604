package bench

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// The bench runs in the process of the server it measures, so what its
// consumer spends is taken from the server. Decoding each Subscribe
// message into generated types cost 15.8% of the process's allocations
// at 5,000 writes/s (an Event message, its key, value, table and id per
// event), to read four fields. The bench's stream keeps each message's
// bytes (rawMessage, rawCodec) and reads the fields it needs in place
// (eachEvent): no allocation per event.

// rawMessage is a Subscribe message as it came.
type rawMessage struct{ b []byte }

// rawCodec is the protobuf codec of the bench's Subscribe stream:
// requests are marshalled as usual, responses kept as bytes.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("bench: cannot marshal %T", m)
	}
	return proto.Marshal(pm)
}

func (rawCodec) Unmarshal(b []byte, m any) error {
	r, ok := m.(*rawMessage)
	if !ok {
		return fmt.Errorf("bench: cannot unmarshal into %T", m)
	}
	r.b = append(r.b[:0], b...) // connect reuses b
	return nil
}

// newEventStreams returns the Subscribe client of the bench's consumer.
func newEventStreams(hc connect.HTTPClient, base string, opts []connect.ClientOption) *connect.Client[wailv1.SubscribeRequest, rawMessage] {
	opts = append(append([]connect.ClientOption{}, opts...), connect.WithCodec(rawCodec{}))
	return connect.NewClient[wailv1.SubscribeRequest, rawMessage](hc, base+wailv1connect.EventServiceSubscribeProcedure, opts...)
}

// eventFields are the fields of a ChangeEvent the bench reads. key
// points into the message: valid until the next message.
type eventFields struct {
	table      []byte
	key        []byte
	version    uint64
	resolvedUs int64
}

// Field numbers of wail.v1.SubscribeResponse, StreamedEvent and
// ChangeEvent (api/wail/v1/wail.proto).
const (
	respEvent        = 1 // SubscribeResponse.event
	respEvents       = 6 // SubscribeResponse.events (StreamedEvent)
	streamedEvent    = 1 // StreamedEvent.event
	eventTable       = 1
	eventKey         = 2
	eventVersion     = 4
	eventResolvedAtU = 7
)

var errMalformed = errors.New("malformed Subscribe message")

// eachEvent calls fn with each event of the encoded SubscribeResponse b,
// in order: the single event, then those of the batch (a server sets one
// or the other). It fails on bytes protobuf would not decode.
func eachEvent(b []byte, fn func(*eventFields)) error {
	var ev eventFields
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType || (num != respEvent && num != respEvents) {
			return nil
		}
		ev = eventFields{}
		if num == respEvent {
			if err := decodeEventInto(v, &ev); err != nil {
				return err
			}
			fn(&ev)
			return nil
		}
		found := false
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if num != streamedEvent || typ != protowire.BytesType {
				return nil
			}
			// A repeated message field's occurrences merge: the last
			// one's fields win, as here (a server sends one).
			found = true
			return decodeEventInto(v, &ev)
		})
		if err != nil || !found {
			return err
		}
		fn(&ev)
		return nil
	})
}

// decodeEventInto merges the fields of the ChangeEvent b into ev.
func decodeEventInto(b []byte, ev *eventFields) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == eventTable && typ == protowire.BytesType:
			ev.table = v
		case num == eventKey && typ == protowire.BytesType:
			ev.key = v
		case num == eventVersion && typ == protowire.VarintType:
			n, _ := protowire.ConsumeVarint(v)
			ev.version = n
		case num == eventResolvedAtU && typ == protowire.VarintType:
			n, _ := protowire.ConsumeVarint(v)
			ev.resolvedUs = int64(n)
		}
		return nil
	})
}

// eachField calls fn with each field of the message b: its number, wire
// type and value (a length-delimited field's contents; a varint's
// encoding; a fixed field's bytes).
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				v = b[:n]
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", errMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}
