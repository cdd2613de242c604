package api

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// strictJSON is the API's JSON codec: connect's own discards unknown fields
// and unknown enum names, so a typo ("vaule") or a CLI word where the enum
// name belongs ("independent") silently became an empty value or the
// default. Here both are errors (connect answers InvalidArgument) naming
// the field and what it accepts. Binary protobuf keeps accepting unknown
// fields: that is how protobuf schemas evolve.
type strictJSON struct{ name string }

// JSONCodecs replaces connect's JSON codecs (both names it registers).
func JSONCodecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(strictJSON{"json"}),
		connect.WithCodec(strictJSON{"json; charset=utf-8"}),
	}
}

func (c strictJSON) Name() string { return c.name }

func (strictJSON) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("json: %T is not a protobuf message", v)
	}
	return protojson.MarshalOptions{}.Marshal(m)
}

func (strictJSON) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("json: %T is not a protobuf message", v)
	}
	if len(b) == 0 {
		return errors.New("an empty body is not a JSON object: send {} for a request with no fields")
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, m); err != nil {
		return explainJSON(m.ProtoReflect().Descriptor(), err)
	}
	return nil
}

// protojson's errors name the field but not what it accepts.
var (
	unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)
	badEnum      = regexp.MustCompile(`invalid value for enum field (\w+)`)
)

// explainJSON adds what a request accepts to protojson's error: the
// message's fields for an unknown field, the enum's names for a bad enum
// value.
func explainJSON(md protoreflect.MessageDescriptor, err error) error {
	msg := err.Error()
	if unknownField.MatchString(msg) {
		return fmt.Errorf("%s: %w (fields: %s; names as in api/wail/v1/wail.proto, in lowerCamelCase)",
			md.FullName(), err, fieldList(md))
	}
	if m := badEnum.FindStringSubmatch(msg); m != nil {
		if ed := findEnum(md, m[1], map[protoreflect.FullName]bool{}); ed != nil {
			return fmt.Errorf("%s: %w (accepted: %s, or the number)", md.FullName(), err, strings.Join(enumNames(ed), ", "))
		}
	}
	return fmt.Errorf("%s: %w", md.FullName(), err)
}

// fieldList lists the JSON field names of md and of the messages it
// contains: "WriteRequest: mutations; Mutation: table, key, op, value".
func fieldList(md protoreflect.MessageDescriptor) string {
	var parts []string
	seen := map[protoreflect.FullName]bool{}
	queue := []protoreflect.MessageDescriptor{md}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if seen[m.FullName()] {
			continue
		}
		seen[m.FullName()] = true
		fs := m.Fields()
		names := make([]string, fs.Len())
		for i := range names {
			f := fs.Get(i)
			names[i] = f.JSONName()
			if f.Message() != nil {
				queue = append(queue, f.Message())
			}
		}
		parts = append(parts, string(m.Name())+": "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}

func enumNames(ed protoreflect.EnumDescriptor) []string {
	vs := ed.Values()
	out := make([]string, 0, vs.Len())
	for i := range vs.Len() {
		if v := vs.Get(i); v.Number() != 0 { // *_UNSPECIFIED means "not set"
			out = append(out, string(v.Name()))
		}
	}
	return out
}

// findEnum finds the enum of the field whose JSON name is jsonName in md or
// the messages it contains.
func findEnum(md protoreflect.MessageDescriptor, jsonName string, seen map[protoreflect.FullName]bool) protoreflect.EnumDescriptor {
	if seen[md.FullName()] {
		return nil
	}
	seen[md.FullName()] = true
	fs := md.Fields()
	for i := range fs.Len() {
		f := fs.Get(i)
		if f.Enum() != nil && (f.JSONName() == jsonName || string(f.Name()) == jsonName) {
			return f.Enum()
		}
		if f.Message() != nil {
			if ed := findEnum(f.Message(), jsonName, seen); ed != nil {
				return ed
			}
		}
	}
	return nil
}
