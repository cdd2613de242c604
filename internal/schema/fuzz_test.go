package schema

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// bytesIn hands out fuzz input a byte at a time, zeros when it runs out.
type bytesIn []byte

func (b *bytesIn) next(n int) int {
	if len(*b) == 0 {
		return 0
	}
	v := int((*b)[0])
	*b = (*b)[1:]
	return v % n
}

var fuzzScalars = []descriptorpb.FieldDescriptorProto_Type{
	descriptorpb.FieldDescriptorProto_TYPE_INT32, descriptorpb.FieldDescriptorProto_TYPE_INT64,
	descriptorpb.FieldDescriptorProto_TYPE_UINT64, descriptorpb.FieldDescriptorProto_TYPE_BOOL,
	descriptorpb.FieldDescriptorProto_TYPE_SINT32, descriptorpb.FieldDescriptorProto_TYPE_STRING,
	descriptorpb.FieldDescriptorProto_TYPE_BYTES, descriptorpb.FieldDescriptorProto_TYPE_FIXED32,
	descriptorpb.FieldDescriptorProto_TYPE_SFIXED64, descriptorpb.FieldDescriptorProto_TYPE_FLOAT,
	descriptorpb.FieldDescriptorProto_TYPE_DOUBLE,
}

var fuzzLabels = []descriptorpb.FieldDescriptorProto_Label{
	descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED,
	descriptorpb.FieldDescriptorProto_LABEL_REQUIRED,
}

// fuzzField sets a field's type from the input: a scalar, a message or
// enum of the file, or (in a message) a map, whose entry it adds.
func fuzzField(in *bytesIn, f *descriptorpb.FieldDescriptorProto, msg *descriptorpb.DescriptorProto) {
	f.TypeName = nil
	switch in.next(5) {
	case 0:
		f.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		f.TypeName = proto.String([]string{".p.A", ".p.B", ".p.A.N"}[in.next(3)])
	case 1:
		f.Type = descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum()
		f.TypeName = proto.String(".p.E")
	case 2:
		entry := "F" + fmt.Sprint(f.GetNumber()) + "Entry"
		f.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		f.TypeName = proto.String("." + "p." + msg.GetName() + "." + entry)
		f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		f.OneofIndex = nil
		f.Name = proto.String("f" + fmt.Sprint(f.GetNumber()))
		f.JsonName = nil
		msg.NestedType = append(msg.NestedType, &descriptorpb.DescriptorProto{
			Name: proto.String(entry),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("key"), Number: proto.Int32(1), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
				{Name: proto.String("value"), Number: proto.Int32(2), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: fuzzScalars[in.next(len(fuzzScalars))].Enum()},
			},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		})
	default:
		f.Type = fuzzScalars[in.next(len(fuzzScalars))].Enum()
	}
}

// fuzzMessage makes message name with fields numbered 1..8 and up to two
// oneofs, from the input.
func fuzzMessage(in *bytesIn, name string) *descriptorpb.DescriptorProto {
	m := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	for i := range 1 + in.next(3) {
		m.OneofDecl = append(m.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(fmt.Sprintf("o%d", i))})
	}
	for n := int32(1); n <= 8; n++ {
		if in.next(3) == 0 {
			continue
		}
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(fmt.Sprintf("f%d", n)), Number: proto.Int32(n),
			Label: fuzzLabels[in.next(len(fuzzLabels))].Enum()}
		if o := in.next(len(m.OneofDecl) + 2); o < len(m.OneofDecl) {
			f.OneofIndex = proto.Int32(int32(o))
			f.Label = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
		}
		fuzzField(in, f, m)
		m.Field = append(m.Field, f)
	}
	return m
}

func fuzzFile(in *bytesIn) *descriptorpb.FileDescriptorProto {
	a := fuzzMessage(in, "A")
	a.NestedType = append(a.NestedType, fuzzMessage(in, "N"))
	e := &descriptorpb.EnumDescriptorProto{Name: proto.String("E")}
	for v := range 1 + in.next(4) {
		e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(fmt.Sprintf("E%d", v)), Number: proto.Int32(int32(v))})
	}
	return &descriptorpb.FileDescriptorProto{
		Name: proto.String("f.proto"), Package: proto.String("p"), Syntax: proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{a, fuzzMessage(in, "B")},
		EnumType:    []*descriptorpb.EnumDescriptorProto{e},
	}
}

// fuzzEdit changes the file at random: fields renumbered, renamed,
// retyped, relabelled, moved in and out of oneofs, removed; messages and
// enum values renamed, removed, reordered; the package renamed.
func fuzzEdit(in *bytesIn, f *descriptorpb.FileDescriptorProto) {
	var msgs []*descriptorpb.DescriptorProto
	for _, m := range f.MessageType {
		msgs = append(msgs, m)
		for _, n := range m.NestedType {
			if !n.GetOptions().GetMapEntry() {
				msgs = append(msgs, n)
			}
		}
	}
	m := msgs[in.next(len(msgs))]
	var fd *descriptorpb.FieldDescriptorProto
	if len(m.Field) > 0 {
		fd = m.Field[in.next(len(m.Field))]
	}
	switch op := in.next(10); {
	case op == 0 && fd != nil:
		fd.Number = proto.Int32(int32(1 + in.next(10)))
	case op == 1 && fd != nil:
		fd.Name = proto.String(fmt.Sprintf("g%d", in.next(10)))
	case op == 2 && fd != nil:
		fuzzField(in, fd, m)
	case op == 3 && fd != nil:
		fd.Label = fuzzLabels[in.next(len(fuzzLabels))].Enum()
		fd.OneofIndex = nil
	case op == 4 && fd != nil:
		fd.OneofIndex = proto.Int32(int32(in.next(len(m.OneofDecl))))
		fd.Label = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	case op == 5 && fd != nil:
		i := slices.Index(m.Field, fd)
		m.Field = slices.Delete(m.Field, i, i+1)
	case op == 6:
		f.MessageType[0], f.MessageType[1] = f.MessageType[1], f.MessageType[0]
	case op == 7:
		v := f.EnumType[0].Value[in.next(len(f.EnumType[0].Value))]
		v.Name = proto.String(fmt.Sprintf("V%d", in.next(5)))
	case op == 8:
		m.Name = proto.String([]string{"A", "B", "C", "N"}[in.next(4)])
	case op == 9:
		f.Package = proto.String([]string{"p", "q"}[in.next(2)])
	}
}

// normalize makes a message valid where the generator and edits leave it
// not: oneof members declared together, no empty oneof.
func normalize(m *descriptorpb.DescriptorProto) {
	used := map[int32]bool{}
	for _, f := range m.Field {
		if f.OneofIndex != nil {
			used[f.GetOneofIndex()] = true
		}
	}
	renum := map[int32]int32{}
	var decls []*descriptorpb.OneofDescriptorProto
	for i, o := range m.OneofDecl {
		if used[int32(i)] {
			renum[int32(i)] = int32(len(decls))
			decls = append(decls, o)
		}
	}
	m.OneofDecl = decls
	for _, f := range m.Field {
		if f.OneofIndex != nil {
			f.OneofIndex = proto.Int32(renum[f.GetOneofIndex()])
		}
	}
	slices.SortStableFunc(m.Field, func(a, b *descriptorpb.FieldDescriptorProto) int {
		key := func(f *descriptorpb.FieldDescriptorProto) int32 {
			if f.OneofIndex == nil {
				return -1
			}
			return f.GetOneofIndex()
		}
		return int(key(a) - key(b))
	})
	for _, n := range m.NestedType {
		normalize(n)
	}
}

// mirror is the difference a change shows when compared the other way;
// types missing here are not symmetric under the rules (oneof membership
// changes, a oneof deleted whole).
var mirror = map[DiffType]DiffType{
	FieldAdded: FieldRemoved, FieldRemoved: FieldAdded,
	RequiredFieldAdded: RequiredFieldRemoved, RequiredFieldRemoved: RequiredFieldAdded,
	MessageAdded: MessageRemoved, MessageRemoved: MessageAdded,
	EnumAdded: EnumRemoved, EnumRemoved: EnumAdded,
	EnumConstAdded: EnumConstRemoved, EnumConstRemoved: EnumConstAdded,
	OneofAdded: OneofRemoved, OneofRemoved: OneofAdded,
	PackageChanged: PackageChanged, FieldNameChanged: FieldNameChanged, FieldKindChanged: FieldKindChanged,
	FieldScalarKindChanged: FieldScalarKindChanged, FieldNumericLabelChanged: FieldNumericLabelChanged,
	FieldStringOrBytesLabelChanged: FieldStringOrBytesLabelChanged, EnumConstChanged: EnumConstChanged,
	MessageMoved: MessageMoved, FieldNamedTypeChanged: FieldNamedTypeChanged,
}

func symmetricPart(diffs []Difference, flip bool) []string {
	var out []string
	for _, d := range diffs {
		m, ok := mirror[d.Type]
		if !ok {
			continue
		}
		if !flip {
			m = d.Type
		}
		out = append(out, string(m)+" "+d.at)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fuzzPair builds a schema from data and an edited copy of it; it fails
// when either is not a valid file.
func fuzzPair(data []byte) (a, b *Schema, err error) {
	in := bytesIn(data)
	orig := fuzzFile(&in)
	upd := proto.Clone(orig).(*descriptorpb.FileDescriptorProto)
	for range 1 + in.next(4) {
		fuzzEdit(&in, upd)
	}
	var out [2]*Schema
	for i, fdp := range []*descriptorpb.FileDescriptorProto{orig, upd} {
		for _, m := range fdp.MessageType {
			normalize(m)
		}
		fd, err := protodesc.NewFile(fdp, nil)
		if err != nil {
			return nil, nil, err
		}
		out[i] = &Schema{file: fd, origins: map[string]string{"f.proto": localOrigin}}
	}
	return out[0], out[1], nil
}

var fuzzSeeds = [][]byte{
	[]byte("\xa3]\x1d\xa7?W\x8e\xdd\x02\"\x81b\x11\xddhN\xc4`\xf9\xde\xb4\xa6\x1db\xdf\x97\xcf\x93\xaaV\x8a\x8d\xd5\xf3u\x87lRT\xcf\x7f\xfb\xac\xfb\xab\xbbd\xc7[K~\xae\xe6\x1b)?l\x11\x92V"),
	[]byte("\xd5\x96\x81\xcf\xcc.\x8a\x83n\x9f]\x99\xaeY\xf9F\xebj\xb2\xd2\xd5`\xd0eH\xaa\xd5\xca4\x89P\xc1R\xf4\xe6[\xbdF\x0e\x81\xc0\xd7\x81\x9f?\xe5\xa5\xdb\x84\xc3H*\xa8\x92\x9d\x82P\x048g"),
	[]byte("P\xd4b\x8e\xedu<\x96\x00~\xb8\xd1Y\xab\x18\x8a^\xe1c\xc2\xd0g\xcec\x00\xab4&\x00\x9b&\xa8\x97\xa8\x9cOw\x91\x88\xb8\x0f\x9a\xdb\n\xa8\v[\xd7a\xcd\xd0lu\v\xf6\x9c\xd9x\xab\xf6"),
}

// TestFuzzSeedsCompare: the fuzz seeds build valid, different schemas, so
// FuzzDiff's checks run on them rather than returning early.
func TestFuzzSeedsCompare(t *testing.T) {
	for _, s := range fuzzSeeds {
		a, b, err := fuzzPair(s)
		if err != nil {
			t.Fatalf("seed %q: %v", s, err)
		}
		if len(Diff(a, b)) == 0 {
			t.Errorf("seed %q: the edit changed nothing", s)
		}
	}
}

// FuzzDiff builds a schema from the input, edits a copy at random, and
// compares them both ways: the comparison never panics, a schema never
// differs from itself, the symmetric rules give mirrored differences, and
// the levels agree with each other (FORWARD one way is BACKWARD the other,
// FULL either way is the same verdict).
func FuzzDiff(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sa, sb, err := fuzzPair(data)
		if err != nil {
			return // not a valid file: nothing to compare
		}
		if d := Diff(sa, sa); len(d) != 0 {
			t.Fatalf("a schema differs from itself: %v", d)
		}
		ab, ba := Diff(sa, sb), Diff(sb, sa)
		if x, y := symmetricPart(ab, true), symmetricPart(ba, false); !slices.Equal(x, y) {
			t.Fatalf("not symmetric:\n a→b mirrored %q\n b→a          %q", x, y)
		}
		prev := func(s *Schema) []Version { return []Version{{Version: 1, Schema: s, Text: "x"}} }
		if (len(Check(Forward, sb, prev(sa))) == 0) != (len(Check(Backward, sa, prev(sb))) == 0) {
			t.Fatal("FORWARD a→b disagrees with BACKWARD b→a")
		}
		if (len(Check(Full, sb, prev(sa))) == 0) != (len(Check(Full, sa, prev(sb))) == 0) {
			t.Fatal("FULL is not symmetric")
		}
		if len(Check(None, sb, prev(sa))) != 0 {
			t.Fatal("NONE refused a schema")
		}
	})
}
