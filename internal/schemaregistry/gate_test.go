package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/schema"
)

// TestCompileGate: schema compiles are bounded in number and time, as the
// server bounds them, not the client: a registration with every compile
// slot taken waits, then fails 50002 naming schema_registry.max_compiles
// (503: retry later); one whose compile takes longer than
// schema_registry.compile_timeout fails 50002 naming it, while its
// client would have waited for ever; neither keeps a slot.
func TestCompileGate(t *testing.T) {
	t.Parallel()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{MaxCompiles: 1, CompileTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	const text = "syntax = \"proto3\";\nmessage M { int32 f = 1; }\n"

	r.gate.slots <- struct{}{} // a compile runs
	start := time.Now()
	_, err := r.Register(ctx, "a-value", SchemaRequest{Schema: text, SchemaType: Protobuf})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout || e.Status != http.StatusServiceUnavailable || !strings.Contains(e.Message, "schema_registry.max_compiles") {
		t.Fatalf("register with the only compile slot taken: %v; want 50002 (503) naming schema_registry.max_compiles", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("refused after %v, before compile_timeout", waited)
	}
	<-r.gate.slots
	if _, err := r.Register(ctx, "a-value", SchemaRequest{Schema: text, SchemaType: Protobuf}); err != nil {
		t.Fatalf("register once the slot is free: %v", err)
	}

	// A schema whose references take longer than compile_timeout to
	// compile: 20 files of 200 KiB (60 ms or more each).
	var refs []Reference
	var main strings.Builder
	main.WriteString("syntax = \"proto3\";\n")
	for i := range 20 {
		var b strings.Builder
		fmt.Fprintf(&b, "syntax = \"proto3\";\npackage p%d;\n", i)
		for j := 0; b.Len() < 200<<10; j++ {
			fmt.Fprintf(&b, "message M%d { int32 f = 1; }\n", j)
		}
		subject := fmt.Sprintf("p%d", i)
		if _, err := New(Catalog(st), Limits{}).Register(ctx, subject, SchemaRequest{Schema: b.String(), SchemaType: Protobuf}); err != nil {
			t.Fatalf("register reference %s: %v", subject, err)
		}
		refs = append(refs, Reference{Name: subject + ".proto", Subject: subject, Version: 1})
		fmt.Fprintf(&main, "import %q;\n", subject+".proto")
	}
	main.WriteString("message X { p0.M1 a = 1; }\n")
	_, err = r.Register(ctx, "big-value", SchemaRequest{Schema: main.String(), SchemaType: Protobuf, References: refs})
	if !errors.As(err, &e) || e.Code != CodeTimeout || !strings.Contains(e.Message, "schema_registry.compile_timeout") {
		t.Fatalf("register of a schema whose compile outlasts compile_timeout: %v; want 50002 naming schema_registry.compile_timeout", err)
	}
	if len(r.gate.slots) != 0 {
		t.Fatal("a timed-out compile kept its slot")
	}
}

// TestCompileGateLateSlot: compile_timeout counts the wait for a slot, so
// a compile that got its slot late and ran out of time failed because the
// server was busy, not because of its schema: 503 (retry later), not the
// 422 that tells the client to use fewer or smaller references. A compile
// that had the slot from the start and outlasted compile_timeout is still
// the schema's (422).
func TestCompileGateLateSlot(t *testing.T) {
	t.Parallel()
	slow := func(ctx context.Context) (*schema.Schema, error) { <-ctx.Done(); return nil, ctx.Err() }
	g := newCompileGate(Limits{MaxCompiles: 1, CompileTimeout: 400 * time.Millisecond})
	g.slots <- struct{}{} // another compile runs, for most of the timeout
	time.AfterFunc(300*time.Millisecond, func() { <-g.slots })
	_, err := g.run(t.Context(), false, slow)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("compile that got its slot late and ran out of time: %v; want 50002 (503: retry later)", err)
	}
	_, err = g.run(t.Context(), false, slow)
	if !errors.As(err, &e) || e.Code != CodeTimeout || e.Status != http.StatusUnprocessableEntity || !strings.Contains(e.Message, "compile_timeout") {
		t.Fatalf("compile that had the slot and outlasted compile_timeout: %v; want 50002 (422) naming compile_timeout", err)
	}
}

// TestCompileGateStoredSlot: schemas already registered compile in a slot
// of their own besides the shared ones, so a flood of registrations (each
// a compile of a schema a client sent) cannot make the writes of a typed
// table that need a stored schema compiled (the first write after a
// start, a new version) wait for compile_timeout and fail Unavailable. The
// extra slot is for stored schemas only: a registration still waits for a
// shared one.
func TestCompileGateStoredSlot(t *testing.T) {
	t.Parallel()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	ctx := t.Context()
	const text = "syntax = \"proto3\";\nmessage M { int32 f = 1; }\n"
	if _, err := New(Catalog(st), Limits{}).Register(ctx, "a-value", SchemaRequest{Schema: text, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}

	r := New(Catalog(st), Limits{MaxCompiles: 1, CompileTimeout: 2 * time.Second}) // nothing compiled yet; time for a loaded machine
	r.gate.slots <- struct{}{}                                                     // a registration's compile runs
	if _, _, err := r.Latest(ctx, "a-value"); err != nil {
		t.Fatalf("latest schema of a subject while registrations take every shared slot: %v", err)
	}
	var e *Error
	_, err := r.Register(ctx, "b-value", SchemaRequest{Schema: text + "message N { int32 g = 1; }\n", SchemaType: Protobuf})
	if !errors.As(err, &e) || e.Code != CodeTimeout || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("registration with the shared slot taken: %v; want 50002 (503): the stored schemas' slot is not for it", err)
	}
	// With both taken, a stored schema's compile waits and fails as busy,
	// not as a schema that "no longer compiles".
	r2 := New(Catalog(st), Limits{MaxCompiles: 1, CompileTimeout: 300 * time.Millisecond})
	r2.gate.slots <- struct{}{}
	r2.gate.stored <- struct{}{}
	_, _, err = r2.Latest(ctx, "a-value")
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || strings.Contains(err.Error(), "no longer compiles") {
		t.Fatalf("latest schema with every slot taken: %v; want 50002 (503), not \"no longer compiles\"", err)
	}
	<-r.gate.slots
	if len(r.gate.stored) != 0 {
		t.Fatal("a stored schema's compile kept its slot")
	}
}
