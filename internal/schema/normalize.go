package schema

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// NormalizedFingerprint is Fingerprint once the schema is normalized as
// Confluent's registry normalizes a Protobuf schema (a register or lookup
// with normalize=true): imports sorted; in every message the fields by
// number, the oneofs by their first field's number, the reserved ranges
// and names, the extension ranges and extensions sorted; in every enum the
// values by number, then name, and its reserved ranges and names sorted.
// Messages and enums keep their order (records name a message by its
// index), as do services. Type names are already fully qualified in a
// descriptor, and options are marshaled by field number.
func (s *Schema) NormalizedFingerprint() [32]byte {
	fdp := protodesc.ToFileDescriptorProto(s.file)
	fdp.SourceCodeInfo = nil
	normalizeFile(fdp)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		// A descriptor built by protodesc always marshals.
		panic(fmt.Sprintf("schema: marshal descriptor: %v", err))
	}
	var buf bytes.Buffer
	buf.Write(b)
	buf.WriteString(s.fingerprintTail())
	return sha256.Sum256(buf.Bytes())
}

func normalizeFile(f *descriptorpb.FileDescriptorProto) {
	// Public and weak imports are indexes into the imports: keep them
	// pointing at the same files.
	public := map[string]bool{}
	for _, i := range f.PublicDependency {
		public[f.Dependency[i]] = true
	}
	weak := map[string]bool{}
	for _, i := range f.WeakDependency {
		weak[f.Dependency[i]] = true
	}
	slices.Sort(f.Dependency)
	f.Dependency = slices.Compact(f.Dependency)
	f.PublicDependency, f.WeakDependency = nil, nil
	for i, d := range f.Dependency {
		if public[d] {
			f.PublicDependency = append(f.PublicDependency, int32(i))
		}
		if weak[d] {
			f.WeakDependency = append(f.WeakDependency, int32(i))
		}
	}
	for _, m := range f.MessageType {
		normalizeMessage(m)
	}
	for _, e := range f.EnumType {
		normalizeEnum(e)
	}
	sortExtensions(f.Extension)
}

func normalizeMessage(m *descriptorpb.DescriptorProto) {
	byNumber := func(a, b *descriptorpb.FieldDescriptorProto) int { return cmp.Compare(a.GetNumber(), b.GetNumber()) }
	slices.SortFunc(m.Field, byNumber)
	if len(m.OneofDecl) > 1 {
		// Oneofs by the lowest number of their fields (the first once
		// sorted); the fields' oneof_index follows.
		first := make([]int32, len(m.OneofDecl))
		for i := range first {
			first[i] = -1
		}
		for _, fd := range m.Field {
			if fd.OneofIndex != nil && first[fd.GetOneofIndex()] < 0 {
				first[fd.GetOneofIndex()] = fd.GetNumber()
			}
		}
		order := make([]int, len(m.OneofDecl))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(first[a], first[b]) })
		newIndex := make([]int32, len(order))
		decls := make([]*descriptorpb.OneofDescriptorProto, len(order))
		for to, from := range order {
			newIndex[from] = int32(to)
			decls[to] = m.OneofDecl[from]
		}
		m.OneofDecl = decls
		for _, fd := range m.Field {
			if fd.OneofIndex != nil {
				fd.OneofIndex = proto.Int32(newIndex[fd.GetOneofIndex()])
			}
		}
	}
	slices.SortFunc(m.ReservedRange, func(a, b *descriptorpb.DescriptorProto_ReservedRange) int {
		return cmp.Or(cmp.Compare(a.GetStart(), b.GetStart()), cmp.Compare(a.GetEnd(), b.GetEnd()))
	})
	slices.Sort(m.ReservedName)
	slices.SortFunc(m.ExtensionRange, func(a, b *descriptorpb.DescriptorProto_ExtensionRange) int {
		return cmp.Or(cmp.Compare(a.GetStart(), b.GetStart()), cmp.Compare(a.GetEnd(), b.GetEnd()))
	})
	sortExtensions(m.Extension)
	for _, n := range m.NestedType {
		normalizeMessage(n)
	}
	for _, e := range m.EnumType {
		normalizeEnum(e)
	}
}

func normalizeEnum(e *descriptorpb.EnumDescriptorProto) {
	slices.SortStableFunc(e.Value, func(a, b *descriptorpb.EnumValueDescriptorProto) int {
		return cmp.Or(cmp.Compare(a.GetNumber(), b.GetNumber()), cmp.Compare(a.GetName(), b.GetName()))
	})
	slices.SortFunc(e.ReservedRange, func(a, b *descriptorpb.EnumDescriptorProto_EnumReservedRange) int {
		return cmp.Or(cmp.Compare(a.GetStart(), b.GetStart()), cmp.Compare(a.GetEnd(), b.GetEnd()))
	})
	slices.Sort(e.ReservedName)
}

func sortExtensions(fs []*descriptorpb.FieldDescriptorProto) {
	slices.SortStableFunc(fs, func(a, b *descriptorpb.FieldDescriptorProto) int {
		return cmp.Or(cmp.Compare(a.GetExtendee(), b.GetExtendee()), cmp.Compare(a.GetNumber(), b.GetNumber()))
	})
}
