package schemaregistry

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStoredSchemaWithSoftDeletedReference: a stored schema whose
// reference was soft-deleted after the schema's own versions were still
// compiles, as in the Confluent registry (which resolves the references of
// a stored schema with deleted versions included, and only a new one's
// against live versions). Old records carry its id: a consumer asking for
// it serialized, and wail's typed tables reading it by id, must get it.
func TestStoredSchemaWithSoftDeletedReference(t *testing.T) {
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	reg := func(subject, text string, refs ...Reference) int {
		t.Helper()
		id, err := r.Register(ctx, subject, SchemaRequest{Schema: text, SchemaType: Protobuf, References: refs})
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		return id
	}
	reg("shop.money", money)
	id := reg("orders-value", orderWithMoney, Reference{Name: "shop/money.proto", Subject: "shop.money", Version: 1})
	// The importer's versions first, then the imported one: allowed, as
	// no live version imports it any more.
	if _, err := r.DeleteSubject(ctx, "orders-value", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteVersion(ctx, "shop.money", 1, false); err != nil {
		t.Fatal(err)
	}
	// A new version may not import the soft-deleted one (as Confluent).
	if _, err := r.Register(ctx, "other-value", SchemaRequest{Schema: orderWithMoney + "// other\n", SchemaType: Protobuf,
		References: []Reference{{Name: "shop/money.proto", Subject: "shop.money", Version: 1}}}); errCode(err) != CodeInvalidSchema {
		t.Fatalf("a new schema importing a soft-deleted version: %v, want error code %d", err, CodeInvalidSchema)
	}

	// Another process (nothing compiled yet) reads the stored schema.
	fresh := New(Catalog(st), Limits{})
	if _, err := fresh.ByID(ctx, id); err != nil {
		t.Fatalf("ByID(%d) of a schema whose reference is soft-deleted: %v", id, err)
	}
	h := Handler(New(Catalog(st), Limits{}), slog.New(slog.DiscardHandler), nil)
	for _, path := range []string{"/schemas/ids/2?format=serialized", "/subjects/orders-value/versions/1?deleted=true&format=serialized"} {
		if a := call(t, h, "GET", path, ""); a.code != 200 || strings.Contains(a.body, "error_code") {
			t.Errorf("GET %s: %d %s", path, a.code, a.body)
		}
	}
}

// TestRemoteStoredSchemaWithSoftDeletedReference: the same through an
// external registry: a schema read by id fetches its references with
// deleted=true, as they may have been soft-deleted since.
func TestRemoteStoredSchemaWithSoftDeletedReference(t *testing.T) {
	ctx := t.Context()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	reg := New(Catalog(st), Limits{})
	srv := httptest.NewServer(Handler(reg, slog.New(slog.DiscardHandler), nil))
	defer srv.Close()
	remote, err := NewRemote(RemoteOptions{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, "shop.money", SchemaRequest{Schema: money, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}
	id, err := reg.Register(ctx, "orders-value", SchemaRequest{Schema: orderWithMoney, SchemaType: Protobuf,
		References: []Reference{{Name: "shop/money.proto", Subject: "shop.money", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.DeleteSubject(ctx, "orders-value", false); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.DeleteVersion(ctx, "shop.money", 1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.ByID(ctx, id); err != nil {
		t.Fatalf("ByID(%d) of a schema whose reference is soft-deleted: %v", id, err)
	}
	// A new schema still may not import it.
	if _, err := remote.Compile(ctx, SchemaRequest{Schema: orderWithMoney, SchemaType: Protobuf,
		References: []Reference{{Name: "shop/money.proto", Subject: "shop.money", Version: 1}}}); err == nil {
		t.Fatal("a new schema compiled against a soft-deleted reference")
	}
}

// TestDeleteSubjectReferencedOnlyByItself: a subject whose later version
// imports one of its own earlier versions can be deleted, soft then
// permanently, as in Confluent's registry (deleteSubject leaves the
// subject's own referrers out: getReferencedBySubjects less the subject);
// it was refused with 42206 and could not be cleaned up. A reference
// from another subject still refuses, and deleting the imported version
// alone still does.
func TestDeleteSubjectReferencedOnlyByItself(t *testing.T) {
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	if _, err := r.SetCompatibility(ctx, "", "NONE"); err != nil {
		t.Fatal(err)
	}
	ref := Reference{Name: "shop/money.proto", Subject: "shop", Version: 1}
	for _, s := range []struct {
		subject, text string
		refs          []Reference
	}{{"shop", money, nil}, {"shop", orderWithMoney, []Reference{ref}}, {"other", money, nil}, {"other", orderWithMoney, []Reference{{Name: ref.Name, Subject: "other", Version: 1}}}} {
		if _, err := r.Register(ctx, s.subject, SchemaRequest{Schema: s.text, SchemaType: Protobuf, References: s.refs}); err != nil {
			t.Fatalf("register %s: %v", s.subject, err)
		}
	}
	if _, err := r.DeleteVersion(ctx, "shop", 1, false); errCode(err) != CodeReferenceExists {
		t.Fatalf("soft delete of shop/1 alone, imported by shop/2: %v, want %d", err, CodeReferenceExists)
	}
	for _, permanent := range []bool{false, true} {
		vs, err := r.DeleteSubject(ctx, "shop", permanent)
		if err != nil || len(vs) != 2 {
			t.Fatalf("delete subject (permanent %v) referenced only by itself: %v %v, want [1 2]", permanent, vs, err)
		}
	}
	if _, err := r.SchemaByID(ctx, 2); errCode(err) != CodeSchemaNotFound {
		t.Fatalf("the importer's schema after a permanent delete: %v", err)
	}

	// Another subject importing it: refused, soft or permanent.
	if _, err := r.Register(ctx, "third", SchemaRequest{Schema: orderWithMoney + "// third\n", SchemaType: Protobuf,
		References: []Reference{{Name: ref.Name, Subject: "other", Version: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "other", false); errCode(err) != CodeReferenceExists {
		t.Fatalf("soft delete of a subject another imports: %v, want %d", err, CodeReferenceExists)
	}
	if _, err := r.DeleteSubject(ctx, "third", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "other", false); err != nil {
		t.Fatalf("soft delete once the other importer is soft-deleted: %v", err)
	}
	if _, err := r.DeleteSubject(ctx, "other", true); errCode(err) != CodeReferenceExists {
		t.Fatalf("permanent delete of a subject a soft-deleted subject imports: %v, want %d", err, CodeReferenceExists)
	}
}

// TestReferenceNamedSchemaProto: a reference may be named schema.proto,
// the path a schema's own file otherwise compiles under, as in the
// Confluent registry (where the schema itself has no path): it was
// refused as "two files named schema.proto". The schema's own file then
// takes another name, also in its serialized form, which a client adds to
// one descriptor pool with its references.
func TestReferenceNamedSchemaProto(t *testing.T) {
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	if _, err := r.Register(ctx, "common", SchemaRequest{Schema: money, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}
	importer := strings.Replace(orderWithMoney, `import "shop/money.proto";`, `import "schema.proto";`, 1)
	if importer == orderWithMoney {
		t.Fatal("orderWithMoney does not import shop/money.proto")
	}
	id, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: importer, SchemaType: Protobuf,
		References: []Reference{{Name: "schema.proto", Subject: "common", Version: 1}}})
	if err != nil {
		t.Fatalf("register a schema importing a reference named schema.proto: %v", err)
	}
	s, err := New(Catalog(st), Limits{}).ByID(ctx, id)
	if err != nil {
		t.Fatalf("ByID(%d): %v", id, err)
	}
	if p := s.File().Path(); p == "schema.proto" {
		t.Errorf("the schema's own file is named %q, as its reference", p)
	}
}
