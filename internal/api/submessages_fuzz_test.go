package api

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// decodedMessages counts the messages m holds, itself not included: what
// decoding it allocated one struct each for.
func decodedMessages(m protoreflect.Message) int {
	n := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
		case fd.IsList():
			for i := range v.List().Len() {
				n += 1 + decodedMessages(v.List().Get(i).Message())
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				n++
				if fd.MapValue().Message() != nil {
					n += 1 + decodedMessages(mv.Message())
				}
				return true
			})
		default:
			n += 1 + decodedMessages(v.Message())
		}
		return true
	})
	return n
}

// submessageRequests are the requests the fuzz decodes each input as:
// the ones that hold lists of messages, and nested ones.
var submessageRequests = []func() proto.Message{
	func() proto.Message { return &wailv1.AckRequest{} },
	func() proto.Message { return &wailv1.CreateTableRequest{} },
	func() proto.Message { return &wailv1.AlterTableRequest{} },
	func() proto.Message { return &wailv1.CreateSinkRequest{} },
	func() proto.Message { return &wailv1.ConsumeRequest{} },
}

// FuzzSubMessages: a request that passes the count (protobuf or JSON)
// decodes to at most the limit's messages, whatever its bytes (unknown
// fields, groups, wrong wire types, repeated singular fields, deep
// nesting); nothing panics or recurses without bound.
func FuzzSubMessages(f *testing.F) {
	const limit = 8
	seed := func(m proto.Message) {
		b, _ := proto.Marshal(m)
		f.Add(b, false)
		j, _ := protojson.Marshal(m)
		f.Add(j, true)
	}
	seed(&wailv1.AckRequest{Table: "t", Acks: []*wailv1.PartitionAck{{}, {Partition: 1, Next: 5}, {}}})
	seed(&wailv1.CreateTableRequest{Name: "t", KeySchema: &wailv1.TypeSchema{References: []*wailv1.SchemaReference{{}, {Name: "a"}}},
		ValueSchema: &wailv1.TypeSchema{Message: "M"}})
	f.Add([]byte{0x3a, 0x04, 0x12, 0x02, 0x12, 0x00}, false) // key_schema{references{}} as bytes
	f.Add([]byte{0x23, 0x24, 0x0b, 0x0c}, false)             // groups
	f.Add([]byte(`{"acks":[{},{},{"partition":1}]}`), true)
	f.Fuzz(func(t *testing.T, b []byte, json bool) {
		for _, req := range submessageRequests {
			m := req()
			var err error
			if json {
				err = boundedJSON{strictJSON{"json"}, limit}.Unmarshal(b, m)
			} else {
				err = boundedProto{limit}.Unmarshal(b, m)
			}
			if err != nil {
				continue
			}
			if n := decodedMessages(m.ProtoReflect()); n > limit {
				t.Fatalf("%T of %d messages passed a count of at most %d (json %v): %x", m, n, limit, json, b)
			}
		}
	})
}
