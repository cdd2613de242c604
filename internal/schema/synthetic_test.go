package schema

import (
	"testing"

	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestSyntheticOneofs: synthetic agrees with IsSynthetic on every kind of
// oneof, for protocompile's descriptors and the Go runtime's (a schema
// given as a descriptor).
func TestSyntheticOneofs(t *testing.T) {
	for _, src := range []string{
		`syntax = "proto3";
message M {
  optional int32 p = 1;            // synthetic
  oneof one { int32 a = 2; }       // real, one field
  oneof two { int32 b = 3; string c = 4; }
  optional string q = 5;
  M m = 6;
}`,
		`syntax = "proto2";
message M {
  optional int32 p = 1;
  oneof one { int32 a = 2; }
  oneof two { int32 b = 3; string c = 4; }
}`,
		`edition = "2023";
message M {
  int32 p = 1;
  oneof one { int32 a = 2; }
}`,
	} {
		s := mustCompile(t, src)
		rt, err := protodesc.NewFile(protodesc.ToFileDescriptorProto(s.File()), nil)
		if err != nil {
			t.Fatal(err)
		}
		var real int
		for _, fd := range []protoreflect.FileDescriptor{s.File(), rt} {
			os := fd.Messages().ByName("M").Oneofs()
			for i := range os.Len() {
				o := os.Get(i)
				if got, want := synthetic(o), o.IsSynthetic(); got != want {
					t.Errorf("%s, oneof %s: synthetic %v, IsSynthetic %v", src[:18], o.Name(), got, want)
				}
				if !o.IsSynthetic() {
					real++
				}
				for j := range o.Fields().Len() {
					f := o.Fields().Get(j)
					if got := oneofOf(f) == ""; got != o.IsSynthetic() {
						t.Errorf("%s, field %s: oneofOf %q", src[:18], f.Name(), oneofOf(f))
					}
				}
			}
		}
		if real == 0 {
			t.Fatalf("%s: no real oneof seen", src[:18])
		}
	}
}
