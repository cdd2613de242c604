package api

import (
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A request of AdminService or EventService holds at most maxMessages
// messages (Services.MaxMessages), counted before it is decoded: each
// decodes to a struct of its own, so a 1 MiB Ack of empty acks (two bytes
// each in protobuf, three in JSON) took 67 MiB (JSON: 53 MiB) before the
// handler looked at it, and api.max_request_bytes_in_flight bounds the
// bytes of bodies, not what they decode to. The legitimate ones hold an
// ack per partition (limits.max_table_partitions) or a schema's
// references (schema_registry.max_references); the Producer service's
// mutations are counted by writeCodec and producerJSON.

// maxNesting bounds how deep the count follows nested messages; deeper
// counts as too many (protobuf's own limit is 10000, far past any
// request of wail's).
const maxNesting = 100

// boundedProto is connect's binary protobuf codec with the count.
type boundedProto struct{ maxMessages int }

func (boundedProto) Name() string { return writeCodecName }

func (boundedProto) Marshal(v any) ([]byte, error) { return writeCodec{}.Marshal(v) }

// MarshalAppend lets connect encode into its pooled buffers.
func (boundedProto) MarshalAppend(dst []byte, v any) ([]byte, error) {
	return writeCodec{}.MarshalAppend(dst, v)
}

func (boundedProto) MarshalStable(v any) ([]byte, error) { return writeCodec{}.MarshalStable(v) }

func (boundedProto) IsBinary() bool { return true }

func (c boundedProto) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("proto: %T is not a protobuf message", v)
	}
	if n := wireMessages(b, m.ProtoReflect().Descriptor(), c.maxMessages, 0); n > c.maxMessages {
		return tooManyMessages(c.maxMessages)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", v, err)
	}
	return nil
}

func tooManyMessages(limit int) error {
	return fmt.Errorf("the request holds more than %d messages, the most one takes (limits.max_table_partitions or "+
		"schema_registry.max_references, with room to spare); it was not decoded", limit)
}

// wireMessages counts the messages nested in b, an encoding of md, and
// stops past limit. What does not parse ends the count: proto.Unmarshal
// then tells what is wrong.
func wireMessages(b []byte, md protoreflect.MessageDescriptor, limit, depth int) int {
	if depth > maxNesting {
		return limit + 1
	}
	n := 0
	for len(b) > 0 && n <= limit {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return n
		}
		if f := md.Fields().ByNumber(num); f != nil && f.Message() != nil && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[:l])
			n += 1 + wireMessages(v, f.Message(), limit-n, depth+1)
		}
		b = b[l:]
	}
	return n
}

// jsonObjects counts the objects of a JSON text but its outermost one,
// stopping past limit: every message but the request itself is one.
func jsonObjects(b []byte, limit int) int {
	n, inString, escaped := -1, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{':
			if n++; n > limit {
				return n
			}
		}
	}
	return n
}

// boundedJSON is strictJSON with the count.
type boundedJSON struct {
	strictJSON
	maxMessages int
}

func (c boundedJSON) Unmarshal(b []byte, v any) error {
	if jsonObjects(b, c.maxMessages) > c.maxMessages {
		return tooManyMessages(c.maxMessages)
	}
	return c.strictJSON.Unmarshal(b, v)
}

// boundedCodecs are the codecs of AdminService and EventService with
// the count; none when maxMessages is 0.
func boundedCodecs(maxMessages int) []connect.HandlerOption {
	if maxMessages <= 0 {
		return nil
	}
	return []connect.HandlerOption{
		connect.WithCodec(boundedProto{maxMessages}),
		connect.WithCodec(boundedJSON{strictJSON{"json"}, maxMessages}),
		connect.WithCodec(boundedJSON{strictJSON{"json; charset=utf-8"}, maxMessages}),
	}
}
