// Package schema compiles Protobuf schemas and decides whether one may
// follow another.
//
// A schema is one .proto file and the files it imports, compiled by a real
// Protobuf compiler (bufbuild/protocompile) into descriptors, or taken
// ready-made from a FileDescriptorSet. Nothing here reads .proto text
// itself.
//
// Diff lists the differences between two schemas with the rules of the
// Confluent Schema Registry's Protobuf provider
// (io.confluent.kafka.schemaregistry.protobuf.diff): the same difference
// types, the same paths ('#/Message/Nested/<field number>'), the same set
// of compatible changes. Check applies a compatibility level (BACKWARD,
// FORWARD, FULL, their _TRANSITIVE forms, NONE) to a candidate and the
// versions before it and words each breaking change the way the Confluent
// registry does, so a client that knows one knows the other; wail adds the
// field's name and types to each message, as the path alone names a field
// by number.
//
// Message checks values of one message type (Protobuf binary, with no
// field the schema lacks; or Protobuf JSON, converted to binary) and
// locates it for the Confluent wire format (AppendWire, ParseWire).
//
// As in the Confluent registry, reserved names and numbers are not
// compared, options are ignored, and moving or reordering messages is
// compatible (serialized message indexes refer to the schema id they were
// written with).
package schema

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// ErrInvalid: the schema does not compile (syntax, unknown type, missing
// import...); the message says where.
var ErrInvalid = errors.New("invalid schema")

// MainPath is the import path a schema's own file compiles under when the
// caller gives none and no import takes it (see mainPath).
const MainPath = "schema.proto"

// File is one .proto source file.
type File struct {
	// Path is the path other files import it by ("shop/money.proto").
	Path string
	// Source is the file's text.
	Source string
	// Origin says where the file's types come from, for imports: two
	// imports with the same non-empty Origin (a registry's subject and
	// version) hold the same types, so messages reached through them are
	// not compared again. Empty: unknown, always compared.
	Origin string
}

// Limits bound what Compile accepts.
type Limits struct {
	// MaxFileBytes bounds each file's source.
	MaxFileBytes int
	// MaxFiles bounds how many files a schema may import, directly or not.
	MaxFiles int
}

// DefaultLimits are the limits used when a field is zero.
var DefaultLimits = Limits{MaxFileBytes: 1 << 20, MaxFiles: 256}

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	return l
}

// Schema is a compiled Protobuf file with what it imports.
type Schema struct {
	file    protoreflect.FileDescriptor
	origins map[string]string // import path -> File.Origin
	// descriptorForm: the schema was given as a descriptor (base64 or a
	// FileDescriptorSet), whose map fields are nested map entry messages
	// that message indexes count; in .proto text they are map<K, V>
	// fields and not counted. The Confluent registry keeps both forms
	// apart, and so does the fingerprint.
	descriptorForm bool
}

// localOrigin marks the types of the schema's own file: local types of two
// schemas are compared once, at the top level, not again through fields.
const localOrigin = "\x00local"

// Compile compiles main with the files it imports (directly or not).
// Confluent's built-in imports (google/protobuf/*.proto, google/type/*.proto,
// confluent/meta.proto, confluent/type/decimal.proto: builtin.go) need no
// import; an import of the same path wins. Each file's Source (main's and
// each import's) is .proto text or, as the Confluent registry also takes, a
// base64 serialized FileDescriptorProto (what confluent-kafka's Python
// serializer registers, imports included). It fails
// with ErrInvalid, naming the file, line and column, when the source does
// not compile, and when a file passes lim.
func Compile(ctx context.Context, main File, imports []File, lim Limits) (*Schema, error) {
	lim = lim.withDefaults()
	if main.Path == "" {
		main.Path = mainPath(imports)
	}
	if len(imports) > lim.MaxFiles {
		return nil, fmt.Errorf("%w: %d imported files, over the limit of %d", ErrInvalid, len(imports), lim.MaxFiles)
	}
	srcs := make(map[string]string, len(imports)+1)
	origins := make(map[string]string, len(imports)+1)
	for _, f := range append([]File{main}, imports...) {
		if len(f.Source) > lim.MaxFileBytes {
			return nil, fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrInvalid, f.Path, len(f.Source), lim.MaxFileBytes)
		}
		if _, dup := srcs[f.Path]; dup {
			return nil, fmt.Errorf("%w: two files named %q", ErrInvalid, f.Path)
		}
		srcs[f.Path] = f.Source
		origins[f.Path] = f.Origin
	}
	origins[main.Path] = localOrigin
	sources := &protocompile.SourceResolver{
		Accessor: func(path string) (io.ReadCloser, error) {
			src, ok := srcs[path]
			if !ok {
				return nil, fmt.Errorf("import %q: %w (add it as a reference)", path, os.ErrNotExist)
			}
			return io.NopCloser(strings.NewReader(src)), nil
		},
	}
	// Each file, the schema's own or an import, is .proto text or a
	// serialized descriptor (confluent-kafka's Python serializer registers
	// a message's imports so too), named by its path whatever name it
	// carries.
	serialized := map[string]*descriptorpb.FileDescriptorProto{}
	for _, f := range append([]File{main}, imports...) {
		fdp := decodeSerialized(f.Source)
		if fdp == nil {
			if err := checkText(f.Path, f.Source); err != nil {
				return nil, err
			}
			continue
		}
		fdp.Name = proto.String(f.Path)
		if tooDeep(fdp.MessageType, 1) {
			return nil, fmt.Errorf("%w: %s: message nesting depth must be less than %d (as in a .proto file)", ErrInvalid, f.Path, maxNesting)
		}
		serialized[f.Path] = fdp
	}
	c := protocompile.Compiler{
		Resolver: withBuiltins(protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
			if fdp, ok := serialized[path]; ok {
				return protocompile.SearchResult{Proto: fdp}, nil
			}
			return sources.FindFileByPath(path)
		})),
		MaxParallelism: 1,
		Reporter:       reporter.NewReporter(nil, nil),
	}
	files, err := c.Compile(ctx, main.Path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for _, fd := range compiledFiles(files[0]) {
		if fdp, ok := serialized[fd.Path()]; ok {
			if err := checkDescriptor(fdp, fd); err != nil {
				return nil, err
			}
		}
	}
	return &Schema{file: files[0], origins: origins, descriptorForm: serialized[main.Path] != nil}, nil
}

// compiledFiles is fd and every file it imports, directly or not.
func compiledFiles(fd protoreflect.FileDescriptor) []protoreflect.FileDescriptor {
	out := []protoreflect.FileDescriptor{fd}
	seen := map[string]bool{fd.Path(): true}
	for i := 0; i < len(out); i++ {
		imps := out[i].Imports()
		for j := range imps.Len() {
			if imp := imps.Get(j).FileDescriptor; !seen[imp.Path()] {
				seen[imp.Path()] = true
				out = append(out, imp)
			}
		}
	}
	return out
}

// mainPath is the path a schema given without one compiles under:
// MainPath, unless an import is named so (the Confluent registry gives a
// schema no path, so a reference may take any name), then the first of
// schema.1.proto, schema.2.proto... that none is.
func mainPath(imports []File) string {
	taken := func(p string) bool {
		return slices.ContainsFunc(imports, func(f File) bool { return f.Path == p })
	}
	p := MainPath
	for i := 1; taken(p); i++ {
		p = fmt.Sprintf("schema.%d.proto", i)
	}
	return p
}

// checkDescriptor holds a serialized descriptor to the rules a compiler's
// output keeps (protodesc.NewFile's: a syntax it knows, named fields with
// valid and distinct numbers, labels and types, type names that resolve,
// ...), against the imports compiled resolves it with. protocompile links
// a given descriptor with few checks: one no compiler writes (a message
// field without its type) compiled, and comparing or checking values with
// it then panicked.
func checkDescriptor(fdp *descriptorpb.FileDescriptorProto, compiled protoreflect.FileDescriptor) error {
	deps := new(protoregistry.Files)
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		imps := fd.Imports()
		for i := range imps.Len() {
			imp := imps.Get(i).FileDescriptor
			if seen[imp.Path()] {
				continue
			}
			seen[imp.Path()] = true
			if err := deps.RegisterFile(imp); err != nil {
				return err
			}
			if err := add(imp); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(compiled); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := protodesc.NewFile(fdp, deps); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, fdp.GetName(), err)
	}
	return nil
}

// maxNesting bounds how deep messages nest in a schema: protocompile's
// parser refuses deeper nesting in a .proto file's text, and a serialized
// descriptor is held to it too (compiling 10,000 levels of one took 800
// MB and a second).
const maxNesting = 32

// tooDeep reports whether msgs, at nesting depth depth, or the messages
// nested in them, reach maxNesting.
func tooDeep(msgs []*descriptorpb.DescriptorProto, depth int) bool {
	if len(msgs) == 0 {
		return false
	}
	if depth >= maxNesting {
		return true
	}
	for _, m := range msgs {
		if tooDeep(m.NestedType, depth+1) {
			return true
		}
	}
	return false
}

// decodeSerialized reads a schema sent as a base64 serialized
// google.protobuf.FileDescriptorProto, as the Confluent registry accepts
// and confluent-kafka's Python serializer registers them; nil when the
// text is not one (a .proto file's text never is valid base64 of one).
func decodeSerialized(src string) *descriptorpb.FileDescriptorProto {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(src))
	if err != nil || len(b) == 0 {
		return nil
	}
	var fdp descriptorpb.FileDescriptorProto
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, &fdp); err != nil || len(fdp.ProtoReflect().GetUnknown()) > 0 {
		return nil
	}
	fillJSONNames(fdp.MessageType, fdp.Extension)
	return &fdp
}

// fillJSONNames gives each field without a json_name its default one (what
// protoc computes: lowerCamelCase). A descriptor as generated code embeds
// it (what confluent-kafka's Python serializer registers) has none, and
// protocompile would take the missing names as custom ones, all "", and
// refuse them as conflicting.
func fillJSONNames(msgs []*descriptorpb.DescriptorProto, exts []*descriptorpb.FieldDescriptorProto) {
	fill := func(fs []*descriptorpb.FieldDescriptorProto) {
		for _, f := range fs {
			if f.JsonName == nil {
				f.JsonName = proto.String(jsonName(f.GetName()))
			}
		}
	}
	fill(exts)
	for _, m := range msgs {
		fill(m.Field)
		fillJSONNames(m.NestedType, m.Extension)
	}
}

// jsonName is protoc's default JSON name of a field: each underscore
// dropped and the letter after it upper-cased.
func jsonName(name string) string {
	b := make([]byte, 0, len(name))
	upper := false
	for i := range len(name) {
		c := name[i]
		switch {
		case c == '_':
			upper = true
			continue
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		upper = false
		b = append(b, c)
	}
	return string(b)
}

// FromDescriptorSet takes the schema of the file path (empty: the last
// file, which protoc --include_imports writes after its imports) from a
// serialized google.protobuf.FileDescriptorSet holding it and everything it
// imports.
func FromDescriptorSet(set []byte, path string) (*Schema, error) {
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(set, &fds); err != nil {
		return nil, fmt.Errorf("%w: not a FileDescriptorSet: %v", ErrInvalid, err)
	}
	if len(fds.File) == 0 {
		return nil, fmt.Errorf("%w: the FileDescriptorSet holds no file", ErrInvalid)
	}
	if path == "" {
		path = fds.File[len(fds.File)-1].GetName()
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	fd, err := files.FindFileByPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: the FileDescriptorSet has no file %q", ErrInvalid, path)
	}
	return &Schema{file: fd, origins: map[string]string{path: localOrigin}, descriptorForm: true}, nil
}

// File is the schema's own file.
func (s *Schema) File() protoreflect.FileDescriptor { return s.file }

// Message finds a message of the schema's own file by full name
// ("shop.Order") or, when it is unique, by its name alone ("Order").
func (s *Schema) Message(name string) (protoreflect.MessageDescriptor, error) {
	var found []protoreflect.MessageDescriptor
	walkMessages(s.file.Messages(), func(m protoreflect.MessageDescriptor) {
		if string(m.FullName()) == name || (!strings.Contains(name, ".") && string(m.Name()) == name) {
			found = append(found, m)
		}
	})
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d messages are named %s: give the full name (%s)", ErrInvalid, len(found), name, found[0].FullName())
	}
	return nil, fmt.Errorf("%w: %s defines no message %s (it defines %s)", ErrInvalid, s.file.Path(), name, strings.Join(s.MessageNames(), ", "))
}

// MessageNames lists the full names of the messages the schema's own file
// defines, nested ones included (map entries excluded).
func (s *Schema) MessageNames() []string {
	var names []string
	walkMessages(s.file.Messages(), func(m protoreflect.MessageDescriptor) { names = append(names, string(m.FullName())) })
	return names
}

func walkMessages(ms protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := range ms.Len() {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue
		}
		fn(m)
		walkMessages(m.Messages(), fn)
	}
}

// Fingerprint identifies what the schema means, not how it is written: the
// SHA-256 of its own file's descriptor (comments, spacing and source
// positions dropped), its form (text or descriptor: message indexes
// differ) and the paths and origins of its imports. Two texts that differ
// only in layout have the same fingerprint.
func (s *Schema) Fingerprint() [32]byte {
	var buf bytes.Buffer
	buf.Write(s.fileBytes())
	buf.WriteString(s.fingerprintTail())
	return sha256.Sum256(buf.Bytes())
}

// fingerprintTail is what a fingerprint takes past the file's descriptor:
// its form and the paths and origins of its imports.
func (s *Schema) fingerprintTail() string {
	var buf strings.Builder
	if s.descriptorForm {
		buf.WriteString("\x00descriptor form")
	}
	paths := make([]string, 0, len(s.origins))
	for p := range s.origins {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(&buf, "\x00%s\x00%s", p, s.origins[p])
	}
	return buf.String()
}

// DescriptorSet is the schema as a serialized FileDescriptorSet: its own
// file last, after every file it imports.
func (s *Schema) DescriptorSet() []byte {
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := range imps.Len() {
			add(imps.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(s.file)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&set)
	if err != nil {
		panic(fmt.Sprintf("schema: marshal descriptor set: %v", err))
	}
	return b
}

// origin is where a type of the schema comes from (see File.Origin).
func (s *Schema) origin(d protoreflect.Descriptor) string {
	return s.origins[d.ParentFile().Path()]
}

// Serialized is the schema's own file as the Confluent registry answers
// format=serialized: a base64 serialized google.protobuf.FileDescriptorProto
// (no source positions or comments; imports named by their paths, which
// are the references' names). confluent-kafka's deserializers build their
// descriptor pools from it.
func (s *Schema) Serialized() string {
	return base64.StdEncoding.EncodeToString(s.fileBytes())
}

// fileBytes is the schema's own file descriptor, serialized
// deterministically without source positions and comments.
func (s *Schema) fileBytes() []byte {
	fdp := protodesc.ToFileDescriptorProto(s.file)
	fdp.SourceCodeInfo = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		// A descriptor built by protodesc always marshals.
		panic(fmt.Sprintf("schema: marshal descriptor: %v", err))
	}
	return b
}
