package schema

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// DiffType is a kind of difference between two schemas, named as the
// Confluent registry names it.
type DiffType string

// The difference types of the Confluent registry's Protobuf provider.
const (
	PackageChanged                 DiffType = "PACKAGE_CHANGED"
	MessageAdded                   DiffType = "MESSAGE_ADDED"
	MessageRemoved                 DiffType = "MESSAGE_REMOVED"
	MessageMoved                   DiffType = "MESSAGE_MOVED"
	EnumAdded                      DiffType = "ENUM_ADDED"
	EnumRemoved                    DiffType = "ENUM_REMOVED"
	EnumConstAdded                 DiffType = "ENUM_CONST_ADDED"
	EnumConstChanged               DiffType = "ENUM_CONST_CHANGED"
	EnumConstRemoved               DiffType = "ENUM_CONST_REMOVED"
	FieldAdded                     DiffType = "FIELD_ADDED"
	FieldRemoved                   DiffType = "FIELD_REMOVED"
	FieldNameChanged               DiffType = "FIELD_NAME_CHANGED"
	FieldKindChanged               DiffType = "FIELD_KIND_CHANGED"
	FieldScalarKindChanged         DiffType = "FIELD_SCALAR_KIND_CHANGED"
	FieldNamedTypeChanged          DiffType = "FIELD_NAMED_TYPE_CHANGED"
	FieldNumericLabelChanged       DiffType = "FIELD_NUMERIC_LABEL_CHANGED"
	FieldStringOrBytesLabelChanged DiffType = "FIELD_STRING_OR_BYTES_LABEL_CHANGED"
	RequiredFieldAdded             DiffType = "REQUIRED_FIELD_ADDED"
	RequiredFieldRemoved           DiffType = "REQUIRED_FIELD_REMOVED"
	OneofAdded                     DiffType = "ONEOF_ADDED"
	OneofRemoved                   DiffType = "ONEOF_REMOVED"
	OneofFieldAdded                DiffType = "ONEOF_FIELD_ADDED"
	OneofFieldRemoved              DiffType = "ONEOF_FIELD_REMOVED"
	OneofFieldMovedToTopLevel      DiffType = "ONEOF_FIELD_MOVED_TO_TOP_LEVEL"
	MultipleFieldsMovedToOneof     DiffType = "MULTIPLE_FIELDS_MOVED_TO_ONEOF"
	FieldMovedToExistingOneof      DiffType = "FIELD_MOVED_TO_EXISTING_ONEOF"
)

// compatible are the differences that keep a new schema able to read what
// the old one wrote (SchemaDiff.COMPATIBLE_CHANGES).
var compatible = map[DiffType]bool{
	MessageAdded: true, MessageMoved: true,
	EnumAdded: true, EnumRemoved: true, EnumConstAdded: true, EnumConstChanged: true, EnumConstRemoved: true,
	FieldAdded: true, FieldRemoved: true, FieldNameChanged: true, FieldStringOrBytesLabelChanged: true,
	OneofAdded: true, OneofRemoved: true, OneofFieldAdded: true, OneofFieldMovedToTopLevel: true,
}

// Compatible reports whether a reader on the new schema still reads what
// the old one wrote despite this difference.
func (t DiffType) Compatible() bool { return compatible[t] }

// descriptions word the incompatible differences as the Confluent registry
// does; the first %s is the reader's schema ("new" for a backward check),
// the second the writer's.
var descriptions = map[DiffType]string{
	PackageChanged:             "The package at '%[3]s' in the %[1]s schema does not match the package in the %[2]s schema",
	MessageRemoved:             "The %[1]s schema is missing a MESSAGE type at path '%[3]s' in the %[2]s schema",
	FieldKindChanged:           "The type of a field at path '%[3]s' in the %[1]s schema does not match the %[2]s schema",
	FieldScalarKindChanged:     "The kind of a SCALAR field at path '%[3]s' in the %[1]s schema does not match its kind in the %[2]s schema",
	FieldNamedTypeChanged:      "The type of a MESSAGE field at path '%[3]s' in the %[1]s schema does not match its type in the %[2]s schema",
	FieldNumericLabelChanged:   "The label for a NUMERIC field at path '%[3]s' in the %[1]s schema does not match its label in the %[2]s schema",
	RequiredFieldAdded:         "A required field  at path '%[3]s' in the %[1]s schema is missing in the %[2]s schema",
	RequiredFieldRemoved:       "The %[1]s schema is missing a required field at path: '%[3]s' in the %[2]s schema",
	OneofFieldRemoved:          "The %[1]s schema is missing a oneof field at path '%[3]s' in the %[2]s schema",
	OneofFieldMovedToTopLevel:  "The oneof field at path '%[3]s' in the %[1]s schema was moved out of its oneof to a top-level field in the %[2]s schema",
	MultipleFieldsMovedToOneof: "Multiple fields in the oneof at path '%[3]s' in the %[1]s schema are outside a oneof in the %[2]s schema",
	FieldMovedToExistingOneof:  "A field in the oneof at path '%[3]s' in the %[1]s schema is outside an existing oneof in the %[2]s schema",
}

// Difference is one difference between an original schema and an update.
type Difference struct {
	Type DiffType
	// Path is where, as the Confluent registry writes it: '#/' then
	// message names, oneof names and field or enum value numbers.
	Path string
	// Detail names what changed in words: the field or value and, for a
	// type change, both types. Empty where the path says it all.
	Detail string
	// at is where, naming a field by its message and number whatever
	// oneof holds it (the path follows the update's oneofs).
	at string
}

func (d Difference) String() string { return string(d.Type) + " " + d.Path }

// Describe words the difference as a compatibility error of the Confluent
// registry, followed by Detail: reader and writer are "new" and "old" (a
// backward check) or "old" and "new" (a forward check).
func (d Difference) Describe(reader, writer string) string {
	desc := ""
	if f, ok := descriptions[d.Type]; ok {
		desc = fmt.Sprintf(f, reader, writer, d.Path)
	}
	if d.Detail != "" {
		if desc != "" {
			desc += ": "
		}
		desc += d.Detail
	}
	return `{errorType:"` + string(d.Type) + `", description:"` + desc + `"}`
}

// maxSteps bounds the work of one Diff (message pairs compared); past it
// the schemas are reported incompatible rather than compared further.
const maxSteps = 1 << 16

// Diff lists the differences from original to update, the Confluent
// registry's SchemaDiff.compare: top-level and nested messages and enums by
// name, fields by number, enum values by number, and messages reached
// through a field of a type imported from elsewhere compared again.
// It never fails: two unrelated schemas just differ a lot.
func Diff(original, update *Schema) []Difference {
	d := &differ{orig: original, upd: update, memo: map[[2]protoreflect.FullName]*memoEntry{}}
	if original.file.Package() != update.file.Package() {
		d.add(PackageChanged, "", "package "+string(original.file.Package())+" → "+string(update.file.Package()))
	}
	d.types(original.file.Messages(), update.file.Messages(), original.file.Enums(), update.file.Enums())
	return dedupe(d.diffs)
}

// Incompatible keeps the differences that break a reader of the update.
func Incompatible(diffs []Difference) []Difference {
	var out []Difference
	for _, d := range diffs {
		if !d.Type.Compatible() {
			out = append(out, d)
		}
	}
	return out
}

type memoEntry struct {
	done       bool
	diffs      []Difference
	compatible bool
}

// differ is one Diff's state: the path being compared and what it found.
type differ struct {
	orig, upd *Schema
	path      []string
	diffs     []Difference
	memo      map[[2]protoreflect.FullName]*memoEntry
	steps     int
	fieldAt   string // while comparing two fields: their message and number
}

func (d *differ) add(t DiffType, seg, detail string) {
	p := "#/" + strings.Join(d.path, "/")
	if seg != "" {
		if len(d.path) > 0 {
			p += "/"
		}
		p += seg
	}
	at := p
	if d.fieldAt != "" {
		at = d.fieldAt
	}
	d.diffs = append(d.diffs, Difference{Type: t, Path: p, Detail: detail, at: at})
}

func (d *differ) enter(seg ...string) func() {
	n := len(d.path)
	d.path = append(d.path, seg...)
	return func() { d.path = d.path[:n] }
}

// types compares the messages and enums declared in one scope (a file or a
// message) by name.
func (d *differ) types(om, um protoreflect.MessageDescriptors, oe, ue protoreflect.EnumDescriptors) {
	oMsgs, oIdx := messagesByName(om)
	uMsgs, uIdx := messagesByName(um)
	for _, name := range unionKeys(oMsgs, uMsgs) {
		o, u := oMsgs[name], uMsgs[name]
		switch {
		case u == nil:
			d.add(MessageRemoved, name, "message "+string(o.FullName())+" removed")
		case o == nil:
			d.add(MessageAdded, name, "")
		default:
			leave := d.enter(name)
			d.message(o, u)
			if oIdx[name] != uIdx[name] {
				d.add(MessageMoved, "", "")
			}
			leave()
		}
	}
	oEnums, uEnums := enumsByName(oe), enumsByName(ue)
	for _, name := range unionKeys(oEnums, uEnums) {
		o, u := oEnums[name], uEnums[name]
		switch {
		case u == nil:
			d.add(EnumRemoved, name, "")
		case o == nil:
			d.add(EnumAdded, name, "")
		default:
			leave := d.enter(name)
			d.enum(o, u)
			leave()
		}
	}
}

func (d *differ) enum(o, u protoreflect.EnumDescriptor) {
	ov, uv := enumValues(o), enumValues(u)
	for _, n := range unionKeys(ov, uv) {
		seg := strconv.Itoa(int(n))
		a, b := ov[n], uv[n]
		switch {
		case b == nil:
			d.add(EnumConstRemoved, seg, "")
		case a == nil:
			d.add(EnumConstAdded, seg, "")
		case a.Name() != b.Name():
			d.add(EnumConstChanged, seg, "")
		}
	}
}

// oneofOf is the real oneof a field belongs to ("" for none; the
// synthetic oneof of a proto3 optional field is none).
func oneofOf(f protoreflect.FieldDescriptor) string {
	if o := f.ContainingOneof(); o != nil && !f.HasOptionalKeyword() {
		return string(o.Name())
	}
	return ""
}

// synthetic reports whether o is the synthetic oneof of a proto3 optional
// field: its only field has the optional keyword (a field of a real oneof
// never has it). OneofDescriptor.IsSynthetic says the same, but
// protocompile's scans the message's fields at each call, so a diff of a
// message with many oneofs took time quadratic in their number (2,000:
// 116 ms per diff).
func synthetic(o protoreflect.OneofDescriptor) bool {
	fs := o.Fields()
	return fs.Len() == 1 && fs.Get(0).HasOptionalKeyword()
}

// message compares two messages of the same name: MessageSchemaDiff.
func (d *differ) message(o, u protoreflect.MessageDescriptor) {
	d.steps++
	if d.steps > maxSteps {
		d.add(FieldNamedTypeChanged, "", "the schemas are too large to compare")
		return
	}
	oFields, uFields := fieldsByNumber(o), fieldsByNumber(u)
	oOneofs, uOneofs := oneofsByName(o), oneofsByName(u)

	// A oneof removed by name none of whose members survive anywhere is
	// deleted whole: compatible, and its members are not reported.
	deleted := map[string]bool{}
	for name, od := range oOneofs {
		if _, ok := uOneofs[name]; ok {
			continue
		}
		survives := false
		fs := od.Fields()
		for i := range fs.Len() {
			if uFields[fs.Get(i).Number()] != nil {
				survives = true
			}
		}
		if !survives {
			deleted[name] = true
		}
	}

	// Fields newly made mutually exclusive: an update oneof whose members
	// existed before in more than one group (a oneof, or alone).
	for _, name := range sortedKeys(uOneofs) {
		groups := map[string]bool{}
		movedIn := 0
		fs := uOneofs[name].Fields()
		for i := range fs.Len() {
			of := oFields[fs.Get(i).Number()]
			switch {
			case of == nil:
			case oneofOf(of) != "":
				groups["oneof:"+oneofOf(of)] = true
			default:
				groups["field:"+strconv.Itoa(int(of.Number()))] = true
				movedIn++
			}
		}
		if len(groups) > 1 {
			t := FieldMovedToExistingOneof
			if movedIn > 1 {
				t = MultipleFieldsMovedToOneof
			}
			d.add(t, name, "fields made mutually exclusive in oneof "+name+" of "+string(u.FullName()))
		}
	}

	for _, name := range unionKeys(oOneofs, uOneofs) {
		switch {
		case uOneofs[name] == nil:
			d.add(OneofRemoved, name, "")
		case oOneofs[name] == nil:
			d.add(OneofAdded, name, "")
		}
	}

	for _, n := range unionKeys(oFields, uFields) {
		seg := strconv.Itoa(int(n))
		of, uf := oFields[n], uFields[n]
		switch {
		case uf == nil:
			if oo := oneofOf(of); oo == "" || !deleted[oo] {
				d.presence(of, seg, "removed", OneofFieldRemoved, RequiredFieldRemoved, FieldRemoved)
			}
		case of == nil:
			d.presence(uf, seg, "added", OneofFieldAdded, RequiredFieldAdded, FieldAdded)
		default:
			uo := oneofOf(uf)
			if oneofOf(of) != "" && uo == "" {
				d.add(OneofFieldMovedToTopLevel, seg, "")
			}
			at := "#/" + strings.Join(d.path, "/") + "#" + seg
			var leave func()
			if uo != "" {
				leave = d.enter(uo, seg)
			} else {
				leave = d.enter(seg)
			}
			d.fieldAt = at
			d.field(of, uf)
			d.fieldAt = ""
			leave()
		}
	}
	d.types(o.Messages(), u.Messages(), o.Enums(), u.Enums())
}

// presence records a field added or removed: in a oneof, required, or
// plain.
func (d *differ) presence(f protoreflect.FieldDescriptor, seg, verb string, inOneof, required, plain DiffType) {
	detail := "field " + fieldName(f) + " " + verb
	switch o := oneofOf(f); {
	case o != "":
		leave := d.enter(o)
		d.add(inOneof, seg, detail)
		leave()
	case f.Cardinality() == protoreflect.Required:
		d.add(required, seg, detail)
	default:
		d.add(plain, seg, detail)
	}
}

// field compares two fields of the same number: FieldSchemaDiff.
func (d *differ) field(o, u protoreflect.FieldDescriptor) {
	if o.Name() != u.Name() {
		d.add(FieldNameChanged, "", "field "+fieldName(o)+" renamed to "+string(u.Name()))
	}
	d.labelsAndTypes(o, u, label(o), label(u), "field "+fieldName(u))
}

// kinds of field types, as the Confluent registry groups them.
type kind int

const (
	kindScalar kind = iota
	kindMap
	kindMessage
)

func kindOf(f protoreflect.FieldDescriptor) kind {
	switch {
	case f.IsMap():
		return kindMap
	case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
		return kindMessage
	}
	return kindScalar // enums are scalars here
}

// scalarKind groups the scalar types whose values read as each other on
// the wire.
func scalarKind(f protoreflect.FieldDescriptor) string {
	switch f.Kind() {
	case protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Int64Kind,
		protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.BoolKind:
		return "general number"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "signed number"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "string or bytes"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	case protoreflect.FloatKind:
		return "float"
	case protoreflect.DoubleKind:
		return "double"
	}
	return f.Kind().String()
}

// label is the field's label as written in .proto text: "" for none
// (proto3 and editions singular fields, map fields, fields of a map entry,
// and oneof members, which the Confluent registry gives no label either:
// moving an optional field into or out of a oneof changes no label).
func label(f protoreflect.FieldDescriptor) string {
	switch {
	case oneofOf(f) != "":
		return ""
	case f.IsMap():
		return ""
	case f.Cardinality() == protoreflect.Repeated:
		return "repeated"
	case f.Cardinality() == protoreflect.Required:
		return "required"
	case f.HasOptionalKeyword():
		return "optional"
	}
	return ""
}

func (d *differ) labelsAndTypes(o, u protoreflect.FieldDescriptor, ol, ul, what string) {
	ok, uk := kindOf(o), kindOf(u)
	if ok != uk {
		d.add(FieldKindChanged, "", what+": "+typeName(o)+" → "+typeName(u))
		return
	}
	switch ok {
	case kindScalar:
		if scalarKind(o) != scalarKind(u) {
			d.add(FieldScalarKindChanged, "", what+": "+typeName(o)+" → "+typeName(u))
			return
		}
		if ol == "" || ul == "" || ol == ul {
			return
		}
		detail := what + ": label " + ol + " → " + ul
		switch scalarKind(o) {
		case "string or bytes":
			d.add(FieldStringOrBytesLabelChanged, "", detail)
		case "general number", "signed number", "fixed32", "fixed64", "float", "double":
			d.add(FieldNumericLabelChanged, "", detail)
		}
	case kindMessage:
		d.messageType(o.Message(), u.Message(), what)
	case kindMap:
		d.labelsAndTypes(o.MapKey(), u.MapKey(), "", "", what+" (map key)")
		d.labelsAndTypes(o.MapValue(), u.MapValue(), "", "", what+" (map value)")
	}
}

// messageType compares the message types of two fields: the same name
// relative to their packages, and, when they come from different places
// (an import, another reference version), the same contents.
func (d *differ) messageType(o, u protoreflect.MessageDescriptor, what string) {
	ol, ul := localName(o), localName(u)
	if ol != ul {
		d.add(FieldNamedTypeChanged, "", what+": "+string(o.FullName())+" → "+string(u.FullName()))
		return
	}
	oo, uo := d.orig.origin(o), d.upd.origin(u)
	if oo != "" && oo == uo {
		return // the same types: compared at the top level or not at all
	}
	key := [2]protoreflect.FullName{o.FullName(), u.FullName()}
	e := d.memo[key]
	if e == nil {
		e = &memoEntry{}
		d.memo[key] = e
		sub := &differ{orig: d.orig, upd: d.upd, path: strings.Split(ol, "."), memo: d.memo, steps: d.steps}
		sub.message(o, u)
		d.steps = sub.steps
		e.diffs, e.compatible, e.done = sub.diffs, len(Incompatible(sub.diffs)) == 0, true
	} else if !e.done {
		return // a message reached through itself: compared where it began
	}
	d.diffs = append(d.diffs, e.diffs...)
	if !e.compatible {
		d.add(FieldNamedTypeChanged, "", what+": "+string(o.FullName())+" changed incompatibly")
	}
}

func localName(m protoreflect.MessageDescriptor) string {
	full, pkg := string(m.FullName()), string(m.ParentFile().Package())
	if pkg != "" && strings.HasPrefix(full, pkg+".") {
		return full[len(pkg)+1:]
	}
	return full
}

func typeName(f protoreflect.FieldDescriptor) string {
	switch {
	case f.IsMap():
		return "map<" + typeName(f.MapKey()) + ", " + typeName(f.MapValue()) + ">"
	case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
		return string(f.Message().FullName())
	case f.Kind() == protoreflect.EnumKind:
		return "enum " + string(f.Enum().FullName())
	}
	return f.Kind().String()
}

func fieldName(f protoreflect.FieldDescriptor) string {
	return string(f.Name()) + " (" + string(f.FullName()) + ")"
}

func messagesByName(ms protoreflect.MessageDescriptors) (map[string]protoreflect.MessageDescriptor, map[string]int) {
	byName := map[string]protoreflect.MessageDescriptor{}
	idx := map[string]int{}
	n := 0
	for i := range ms.Len() {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue // written as map<K, V>, not a message of its own
		}
		byName[string(m.Name())] = m
		idx[string(m.Name())] = n
		n++
	}
	return byName, idx
}

// index maps a descriptor list by key (ok false: left out); of equal keys
// the last counts, as for enum value aliases.
func index[K comparable, D any](list interface {
	Len() int
	Get(int) D
}, key func(D) (K, bool)) map[K]D {
	out := map[K]D{}
	for i := range list.Len() {
		d := list.Get(i)
		if k, ok := key(d); ok {
			out[k] = d
		}
	}
	return out
}

func enumsByName(es protoreflect.EnumDescriptors) map[string]protoreflect.EnumDescriptor {
	return index(es, func(e protoreflect.EnumDescriptor) (string, bool) { return string(e.Name()), true })
}

func enumValues(e protoreflect.EnumDescriptor) map[protoreflect.EnumNumber]protoreflect.EnumValueDescriptor {
	return index(e.Values(), func(v protoreflect.EnumValueDescriptor) (protoreflect.EnumNumber, bool) { return v.Number(), true })
}

func fieldsByNumber(m protoreflect.MessageDescriptor) map[protoreflect.FieldNumber]protoreflect.FieldDescriptor {
	return index(m.Fields(), func(f protoreflect.FieldDescriptor) (protoreflect.FieldNumber, bool) { return f.Number(), true })
}

func oneofsByName(m protoreflect.MessageDescriptor) map[string]protoreflect.OneofDescriptor {
	return index(m.Oneofs(), func(o protoreflect.OneofDescriptor) (string, bool) { return string(o.Name()), !synthetic(o) })
}

func unionKeys[K cmp.Ordered, V any](a, b map[K]V) []K {
	seen := map[K]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	return sortedKeys(seen)
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}

// dedupe drops repeated differences (the same message reached through
// several fields), keeping the first.
func dedupe(diffs []Difference) []Difference {
	seen := map[string]bool{}
	out := diffs[:0]
	for _, d := range diffs {
		k := d.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}
