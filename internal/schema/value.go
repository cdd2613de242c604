package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// ErrValue: a value does not match its message type; the message says
// how (malformed bytes, a field the schema does not have, a missing
// required field, JSON that does not fit).
var ErrValue = errors.New("value does not match the schema")

// Message is one message type of a schema: what a typed table's key or
// value is.
type Message struct {
	desc protoreflect.MessageDescriptor
	// countMapEntries: the schema is in descriptor form (see Schema).
	countMapEntries bool
}

// MessageType returns the message type name of the schema's own file (full
// name, or the name alone when unique).
func (s *Schema) MessageType(name string) (Message, error) {
	d, err := s.Message(name)
	if err != nil {
		return Message{}, err
	}
	return Message{desc: d, countMapEntries: s.descriptorForm}, nil
}

// Descriptor is the message's descriptor.
func (m Message) Descriptor() protoreflect.MessageDescriptor { return m.desc }

// Decode parses Protobuf binary as the message. A field number the
// message does not define is refused: the writer used a schema the
// registry does not hold for this table (drift), not a compatible older
// one. Required fields (proto2) must be set.
func (m Message) Decode(b []byte) (protoreflect.Message, error) {
	msg := dynamicpb.NewMessage(m.desc)
	if err := (proto.UnmarshalOptions{}).Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("%w: not a %s in Protobuf binary: %v", ErrValue, m.desc.FullName(), err)
	}
	if err := unknownFields(msg); err != nil {
		return nil, err
	}
	if err := proto.CheckInitialized(msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrValue, m.desc.FullName(), err)
	}
	return msg, nil
}

// unknownFields refuses fields, at any depth, that the schema does not
// define.
func unknownFields(msg protoreflect.Message) error {
	if raw := msg.GetUnknown(); len(raw) > 0 {
		num, _, _ := protowire.ConsumeTag(raw)
		return fmt.Errorf("%w: field number %d is not in %s: register the schema that has it first", ErrValue, num, msg.Descriptor().FullName())
	}
	var err error
	msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = unknownFields(mv.Message())
				return err == nil
			})
		case fd.IsList() && (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind):
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = unknownFields(l.Get(i).Message())
			}
		case !fd.IsList() && !fd.IsMap() && (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind):
			err = unknownFields(v.Message())
		}
		return err == nil
	})
	return err
}

// Validate is Decode, for the answer only.
func (m Message) Validate(b []byte) error {
	_, err := m.Decode(b)
	return err
}

// FromJSON converts the message's Protobuf JSON (protojson: field names
// or their JSON names, enums by name, 64-bit integers as strings or
// numbers) to Protobuf binary, deterministically, so that a JSON writer
// and a binary writer of the same row store the same bytes.
func (m Message) FromJSON(j []byte) ([]byte, error) {
	msg := dynamicpb.NewMessage(m.desc)
	if err := (protojson.UnmarshalOptions{}).Unmarshal(j, msg); err != nil {
		return nil, fmt.Errorf("%w: not a %s in Protobuf JSON: %v", ErrValue, m.desc.FullName(), err)
	}
	if err := proto.CheckInitialized(msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrValue, m.desc.FullName(), err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrValue, m.desc.FullName(), err)
	}
	return b, nil
}

// ToJSON prints Protobuf binary as the message's Protobuf JSON.
func (m Message) ToJSON(b []byte) ([]byte, error) {
	msg, err := m.Decode(b)
	if err != nil {
		return nil, err
	}
	return protojson.MarshalOptions{}.Marshal(msg.Interface())
}

// Print prints Protobuf binary as the message's Protobuf JSON for a
// person to read, compact (protojson's own spacing varies on purpose):
// unlike ToJSON it leaves out fields the message does not have (a value
// written before a field was removed, or after one was added, prints what
// this schema knows). Malformed bytes are ErrValue.
func (m Message) Print(b []byte) ([]byte, error) {
	msg := dynamicpb.NewMessage(m.desc)
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("%w: not a %s in Protobuf binary: %v", ErrValue, m.desc.FullName(), err)
	}
	j, err := protojson.MarshalOptions{AllowPartial: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrValue, m.desc.FullName(), err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, j); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrValue, m.desc.FullName(), err)
	}
	return out.Bytes(), nil
}

// Indexes locates the message in its file as Confluent's wire format
// does: its index among the file's top-level messages, then among each
// enclosing message's nested messages. Enums are not counted; map entries
// are counted only in a schema given in descriptor form, as its clients
// (confluent-kafka's serializers working from descriptors) count them.
func (m Message) Indexes() []int {
	var path []int
	var d protoreflect.Descriptor = m.desc
	for {
		parent := d.Parent()
		var siblings protoreflect.MessageDescriptors
		switch p := parent.(type) {
		case protoreflect.FileDescriptor:
			siblings = p.Messages()
		case protoreflect.MessageDescriptor:
			siblings = p.Messages()
		default:
			return path
		}
		n := 0
		for i := range siblings.Len() {
			s := siblings.Get(i)
			if s.FullName() == d.FullName() {
				break
			}
			if !s.IsMapEntry() || m.countMapEntries {
				n++
			}
		}
		path = append([]int{n}, path...)
		if _, ok := parent.(protoreflect.FileDescriptor); ok {
			return path
		}
		d = parent
	}
}

// ByIndexes finds the message Indexes names.
func (s *Schema) ByIndexes(indexes []int) (Message, error) {
	ms := s.file.Messages()
	var found protoreflect.MessageDescriptor
	for depth, want := range indexes {
		n := 0
		found = nil
		for i := range ms.Len() {
			if ms.Get(i).IsMapEntry() && !s.descriptorForm {
				continue
			}
			if n == want {
				found = ms.Get(i)
				break
			}
			n++
		}
		if found == nil {
			return Message{}, fmt.Errorf("%w: message indexes %v: no message %d at depth %d of %s", ErrValue, indexes, want, depth, s.file.Path())
		}
		ms = found.Messages()
	}
	if found == nil {
		return Message{}, fmt.Errorf("%w: no message indexes", ErrValue)
	}
	return Message{desc: found, countMapEntries: s.descriptorForm}, nil
}
