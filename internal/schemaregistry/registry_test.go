package schemaregistry

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

const (
	orderV1 = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 amount = 2;
}
`
	// v2 adds a field: compatible under every level.
	orderV2 = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 amount = 2;
  string note = 3;
}
`
	// amount becomes a string: incompatible.
	orderBad = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  string amount = 2;
}
`
	money = `syntax = "proto3";
package shop.money;
message Money { int64 units = 1; string currency = 2; }
`
	orderWithMoney = `syntax = "proto3";
package shop;
import "shop/money.proto";
message Order { string id = 1; shop.money.Money total = 2; }
`
)

func openPebble(t testing.TB, dir string) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(dir, pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// serve runs a registry over a fresh Pebble store under /registry, as wail
// serve mounts it, and returns a franz-go sr client for it.
func serve(t *testing.T) (*sr.Client, *Registry, string) {
	t.Helper()
	st := openPebble(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	r := New(Catalog(st), Limits{})
	mux := http.NewServeMux()
	mux.Handle("/registry/", http.StripPrefix("/registry", Handler(r, slog.New(slog.DiscardHandler), nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL + "/registry"))
	if err != nil {
		t.Fatal(err)
	}
	return cl, r, srv.URL + "/registry"
}

func proto(text string, refs ...sr.SchemaReference) sr.Schema {
	return sr.Schema{Schema: text, Type: sr.TypeProtobuf, References: refs}
}

// code is the Confluent error code of a failed call.
func code(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return 0
}

func TestRegisterFetchEvolve(t *testing.T) {
	cl, _, _ := serve(t)
	ctx := t.Context()

	v1, err := cl.CreateSchema(ctx, "orders-value", proto(orderV1))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if v1.ID != 1 || v1.Version != 1 || v1.Subject != "orders-value" || v1.Type != sr.TypeProtobuf || v1.Schema.Schema != orderV1 {
		t.Fatalf("created %+v", v1)
	}
	// The same schema again, even laid out differently: the same id and version.
	again, err := cl.CreateSchema(ctx, "orders-value", proto(strings.ReplaceAll(orderV1, "\n", "\n\n")))
	if err != nil || again.ID != 1 || again.Version != 1 {
		t.Fatalf("re-register: %+v, %v", again, err)
	}
	// The same schema under another subject: the same id, version 1 there.
	other, err := cl.CreateSchema(ctx, "refunds-value", proto(orderV1))
	if err != nil || other.ID != 1 || other.Version != 1 {
		t.Fatalf("other subject: %+v, %v", other, err)
	}

	byID, err := cl.SchemaByID(ctx, 1)
	if err != nil || byID.Schema != orderV1 || byID.Type != sr.TypeProtobuf {
		t.Fatalf("by id: %+v, %v", byID, err)
	}
	if text, err := cl.SchemaTextByID(ctx, 1); err != nil || text != orderV1 {
		t.Fatalf("text by id: %q, %v", text, err)
	}
	if subs, err := cl.SubjectsByID(ctx, 1); err != nil || !slices.Equal(subs, []string{"orders-value", "refunds-value"}) {
		t.Fatalf("subjects by id: %v, %v", subs, err)
	}
	if _, err := cl.SchemaByID(ctx, 99); code(err) != CodeSchemaNotFound {
		t.Fatalf("missing id: %v", err)
	}
	look, err := cl.LookupSchema(ctx, "orders-value", proto(orderV1))
	if err != nil || look.ID != 1 || look.Version != 1 {
		t.Fatalf("lookup: %+v, %v", look, err)
	}
	if _, err := cl.LookupSchema(ctx, "orders-value", proto(orderV2)); code(err) != CodeSchemaNotFound {
		t.Fatalf("lookup of an unregistered schema: %v", err)
	}
	if _, err := cl.LookupSchema(ctx, "nobody", proto(orderV1)); code(err) != CodeSubjectNotFound {
		t.Fatalf("lookup in a missing subject: %v", err)
	}

	// A compatible change is version 2 with a new id.
	v2, err := cl.CreateSchema(ctx, "orders-value", proto(orderV2))
	if err != nil || v2.ID != 2 || v2.Version != 2 {
		t.Fatalf("v2: %+v, %v", v2, err)
	}
	if vs, err := cl.SubjectVersions(ctx, "orders-value"); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions: %v, %v", vs, err)
	}
	if latest, err := cl.SchemaByVersion(ctx, "orders-value", -1); err != nil || latest.Version != 2 || latest.ID != 2 {
		t.Fatalf("latest: %+v, %v", latest, err)
	}

	// An incompatible one is refused with 409 naming the field and types.
	_, err = cl.CreateSchema(ctx, "orders-value", proto(orderBad))
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict || re.ErrorCode != CodeIncompatible ||
		!errors.Is(re.SchemaError(), sr.ErrIncompatibleSchema) {
		t.Fatalf("incompatible: %v", err)
	}
	for _, want := range []string{`incompatible with an earlier schema for subject "orders-value"`, "FIELD_SCALAR_KIND_CHANGED",
		"#/Order/2", "field amount (shop.Order.amount): int64 → string", "{oldSchemaVersion: 2}", "compatibility: 'BACKWARD'"} {
		if !strings.Contains(re.Message, want) {
			t.Errorf("refusal %q does not say %q", re.Message, want)
		}
	}
	if vs, _ := cl.SubjectVersions(ctx, "orders-value"); len(vs) != 2 {
		t.Fatalf("a refused schema was registered: versions %v", vs)
	}

	// The compatibility test answers without registering.
	res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "orders-value", -1, proto(orderBad))
	if err != nil || res.Is || len(res.Messages) == 0 || !strings.Contains(res.Messages[0], "FIELD_SCALAR_KIND_CHANGED") {
		t.Fatalf("check latest: %+v, %v", res, err)
	}
	if res, err := cl.CheckCompatibility(ctx, "orders-value", 1, proto(orderV2)); err != nil || !res.Is {
		t.Fatalf("check v1: %+v, %v", res, err)
	}
	if res, err := cl.CheckCompatibility(ctx, "orders-value", -2, proto(orderBad)); err != nil || res.Is {
		t.Fatalf("check by level: %+v, %v", res, err)
	}
	if _, err := cl.CheckCompatibility(ctx, "orders-value", 7, proto(orderV2)); code(err) != CodeVersionNotFound {
		t.Fatalf("check against a missing version: %v", err)
	}
	// Any subject name a client may send, escaped in the path.
	if odd, err := cl.CreateSchema(ctx, "team/orders value", proto(orderV1)); err != nil || odd.Subject != "team/orders value" || odd.ID != 1 {
		t.Fatalf("subject with a slash and a space: %+v, %v", odd, err)
	}
	// Under NONE the same schema registers.
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "orders-value"); r[0].Err != nil || r[0].Level != sr.CompatNone {
		t.Fatalf("set NONE: %+v", r[0])
	}
	if v3, err := cl.CreateSchema(ctx, "orders-value", proto(orderBad)); err != nil || v3.Version != 3 {
		t.Fatalf("register under NONE: %+v, %v", v3, err)
	}
}

func TestDeletes(t *testing.T) {
	cl, _, _ := serve(t)
	ctx := t.Context()
	for _, s := range []string{orderV1, orderV2} {
		if _, err := cl.CreateSchema(ctx, "orders-value", proto(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Hard delete needs a soft delete first.
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.HardDelete); code(err) != CodeVersionNotSoftDeleted {
		t.Fatalf("hard delete of a live version: %v", err)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); code(err) != CodeVersionSoftDeleted {
		t.Fatalf("second soft delete: %v", err)
	}
	if vs, _ := cl.SubjectVersions(ctx, "orders-value"); !slices.Equal(vs, []int{2}) {
		t.Fatalf("versions after soft delete: %v", vs)
	}
	if vs, _ := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "orders-value"); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions with deleted: %v", vs)
	}
	if _, err := cl.SchemaByVersion(ctx, "orders-value", 1); code(err) != CodeVersionNotFound {
		t.Fatalf("soft-deleted version: %v", err)
	}
	if s, err := cl.SchemaByVersion(sr.WithParams(ctx, sr.ShowDeleted), "orders-value", 1); err != nil || s.ID != 1 {
		t.Fatalf("soft-deleted version with deleted=true: %+v %v", s, err)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	// Id 1 is used by nothing now: gone.
	if _, err := cl.SchemaByID(ctx, 1); code(err) != CodeSchemaNotFound {
		t.Fatalf("id of a hard-deleted version: %v", err)
	}

	// The subject: soft, then hard.
	if _, err := cl.DeleteSubject(ctx, "orders-value", sr.HardDelete); code(err) != CodeSubjectNotSoftDeleted {
		t.Fatalf("hard delete of a live subject: %v", err)
	}
	if vs, err := cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete); err != nil || !slices.Equal(vs, []int{2}) {
		t.Fatalf("soft delete subject: %v %v", vs, err)
	}
	if _, err := cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete); code(err) != CodeSubjectSoftDeleted {
		t.Fatalf("second soft delete of the subject: %v", err)
	}
	if subs, _ := cl.Subjects(ctx); len(subs) != 0 {
		t.Fatalf("subjects after soft delete: %v", subs)
	}
	if _, err := cl.SubjectVersions(ctx, "orders-value"); code(err) != CodeSubjectNotFound {
		t.Fatalf("versions of a soft-deleted subject: %v", err)
	}
	// Registering again continues the numbering; the schema keeps its id,
	// and its soft-deleted version 2 goes for good (as Confluent's).
	again, err := cl.CreateSchema(ctx, "orders-value", proto(orderV2))
	if err != nil || again.Version != 3 || again.ID != 2 {
		t.Fatalf("register after soft delete: %+v %v", again, err)
	}
	if _, err := cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if vs, err := cl.DeleteSubject(ctx, "orders-value", sr.HardDelete); err != nil || !slices.Equal(vs, []int{3}) {
		t.Fatalf("hard delete subject: %v %v", vs, err)
	}
	// Ids are never reused: a new schema after everything is gone is id 3.
	fresh, err := cl.CreateSchema(ctx, "orders-value", proto(orderBad))
	if err != nil || fresh.ID != 3 || fresh.Version != 1 {
		t.Fatalf("register after hard delete: %+v %v", fresh, err)
	}
}

func TestReferences(t *testing.T) {
	cl, _, _ := serve(t)
	ctx := t.Context()
	m, err := cl.CreateSchema(ctx, "shop.money", proto(money))
	if err != nil {
		t.Fatal(err)
	}
	ref := sr.SchemaReference{Name: "shop/money.proto", Subject: "shop.money", Version: 1}
	o, err := cl.CreateSchema(ctx, "orders-value", proto(orderWithMoney, ref))
	if err != nil {
		t.Fatalf("register with a reference: %v", err)
	}
	if len(o.References) != 1 || o.References[0] != ref {
		t.Fatalf("references: %+v", o.References)
	}
	users, err := cl.SchemaReferences(ctx, "shop.money", 1)
	if err != nil || len(users) != 1 || users[0].ID != o.ID {
		t.Fatalf("referencedby: %+v %v", users, err)
	}
	// Without the reference the import does not resolve.
	if _, err := cl.CreateSchema(ctx, "orders-value", proto(orderWithMoney)); code(err) != CodeInvalidSchema ||
		!strings.Contains(err.Error(), "shop/money.proto") {
		t.Fatalf("missing reference: %v", err)
	}
	if _, err := cl.CreateSchema(ctx, "orders-value", proto(orderWithMoney, sr.SchemaReference{Name: "shop/money.proto", Subject: "nope", Version: 1})); code(err) != CodeInvalidSchema {
		t.Fatalf("reference to a missing subject: %v", err)
	}
	// A referenced version cannot be deleted.
	if err := cl.DeleteSchema(ctx, "shop.money", 1, sr.SoftDelete); code(err) != CodeReferenceExists {
		t.Fatalf("delete a referenced version: %v", err)
	}
	// Money v2 changes units incompatibly; an order moving to it is
	// checked through the reference.
	if _, err := cl.CreateSchema(ctx, "shop.money", proto(strings.Replace(money, "int64 units", "string units", 1))); code(err) != CodeIncompatible {
		t.Fatalf("incompatible money v2: %v", err)
	}
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "shop.money")
	if _, err := cl.CreateSchema(ctx, "shop.money", proto(strings.Replace(money, "int64 units", "string units", 1))); err != nil {
		t.Fatal(err)
	}
	_, err = cl.CreateSchema(ctx, "orders-value", proto(orderWithMoney, sr.SchemaReference{Name: "shop/money.proto", Subject: "shop.money", Version: 2}))
	if code(err) != CodeIncompatible || !strings.Contains(err.Error(), "#/Money/1") || !strings.Contains(err.Error(), "FIELD_NAMED_TYPE_CHANGED") {
		t.Fatalf("order moving to an incompatible referenced version: %v", err)
	}
	_ = m
}

func TestConfigAndMode(t *testing.T) {
	cl, _, _ := serve(t)
	ctx := t.Context()
	if r := cl.Compatibility(ctx); r[0].Err != nil || r[0].Level != sr.CompatBackward {
		t.Fatalf("default global level: %+v", r[0])
	}
	if r := cl.Compatibility(ctx, "orders-value"); code(r[0].Err) != CodeSubjectCompatNotConfigured {
		t.Fatalf("subject without a level: %+v", r[0])
	}
	if r := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "orders-value"); r[0].Err != nil || r[0].Level != sr.CompatBackward {
		t.Fatalf("subject level defaulting to global: %+v", r[0])
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}); r[0].Err != nil || r[0].Level != sr.CompatFullTransitive {
		t.Fatalf("set global: %+v", r[0])
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "orders-value"); r[0].Err != nil {
		t.Fatalf("set subject: %+v", r[0])
	}
	if r := cl.Compatibility(ctx, "orders-value"); r[0].Level != sr.CompatForward {
		t.Fatalf("subject level: %+v", r[0])
	}
	if r := cl.ResetCompatibility(ctx, "orders-value"); r[0].Err != nil || r[0].Level != sr.CompatForward {
		t.Fatalf("reset subject: %+v", r[0])
	}
	if r := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "orders-value"); r[0].Level != sr.CompatFullTransitive {
		t.Fatalf("subject level after reset: %+v", r[0])
	}

	if r := cl.Mode(ctx); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
		t.Fatalf("default mode: %+v", r[0])
	}
	if r := cl.SetMode(ctx, sr.ModeReadOnly, "orders-value"); r[0].Err != nil || r[0].Mode != sr.ModeReadOnly {
		t.Fatalf("set mode: %+v", r[0])
	}
	if _, err := cl.CreateSchema(ctx, "orders-value", proto(orderV1)); code(err) != CodeNotPermitted || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("register in READONLY: %v", err)
	}
	if _, err := cl.CreateSchema(ctx, "other-value", proto(orderV1)); err != nil {
		t.Fatalf("register in another subject: %v", err)
	}
	// IMPORT on a registry with subjects needs force.
	if r := cl.SetMode(ctx, sr.ModeImport); code(r[0].Err) != CodeNotPermitted {
		t.Fatalf("IMPORT over subjects: %+v", r[0])
	}
	if r := cl.ResetMode(ctx, "orders-value"); r[0].Err != nil {
		t.Fatalf("reset mode: %+v", r[0])
	}
	if _, err := cl.CreateSchema(ctx, "orders-value", proto(orderV1)); err != nil {
		t.Fatalf("register after reset: %v", err)
	}
	// A schema with an id is only taken in IMPORT mode.
	if _, err := cl.RegisterSchema(ctx, "imported", proto(orderV2), 100, 5); code(err) != CodeNotPermitted {
		t.Fatalf("id outside IMPORT: %v", err)
	}
	if r := cl.SetMode(ctx, sr.ModeImport, "imported"); r[0].Err != nil {
		t.Fatalf("IMPORT on an empty subject: %+v", r[0])
	}
	if id, err := cl.RegisterSchema(ctx, "imported", proto(orderV2), 100, 5); err != nil || id != 100 {
		t.Fatalf("import: %d %v", id, err)
	}
	if s, err := cl.SchemaByVersion(ctx, "imported", 5); err != nil || s.ID != 100 {
		t.Fatalf("imported version: %+v %v", s, err)
	}
	if _, err := cl.RegisterSchema(ctx, "imported", proto(orderBad), 100, 6); code(err) != CodeIDMismatch {
		t.Fatalf("import over a taken id: %v", err)
	}
	// New ids continue after the imported one.
	cl.ResetMode(ctx, "imported")
	if s, err := cl.CreateSchema(ctx, "fresh", proto(money)); err != nil || s.ID != 101 {
		t.Fatalf("id after an import: %+v %v", s, err)
	}
}

// checkShared registers from two registries at once (two processes on
// one store): one schema gets one id whichever registers it, another
// schema another id, and both see every subject.
func checkShared(t *testing.T, a, b *Registry) map[int]bool {
	t.Helper()
	ctx := t.Context()
	const n = 12
	var wg sync.WaitGroup
	ids := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r := a
			if i%2 == 1 {
				r = b
			}
			// Pairs of registrations share a schema: they must share its id.
			text := fmt.Sprintf("syntax = \"proto3\"; message M%d { int32 x = 1; }", i/2)
			ids[i], errs[i] = r.Register(ctx, fmt.Sprintf("s%d", i), SchemaRequest{Schema: text, SchemaType: Protobuf})
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := 0; i < n; i += 2 {
		if errs[i] != nil || errs[i+1] != nil {
			t.Fatalf("register: %v, %v", errs[i], errs[i+1])
		}
		if ids[i] != ids[i+1] || seen[ids[i]] {
			t.Fatalf("ids %v: one schema, one id; another schema, another id", ids)
		}
		seen[ids[i]] = true
	}
	for _, r := range []*Registry{a, b} {
		if subs, err := r.Subjects(ctx, "s", false); err != nil || len(subs) != n {
			t.Fatalf("subjects: %v %v", subs, err)
		}
	}
	return seen
}

// TestDurableAndShared: the registry lives in the store: registries of
// two processes on one store never hand out one id twice, and one opened
// on the same store after a restart sees every id and version.
func TestDurableAndShared(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st := openPebble(t, dir)
	seen := checkShared(t, New(Catalog(st), Limits{}), New(Catalog(st), Limits{}))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openPebble(t, dir)
	defer st.Close()
	r := New(Catalog(st), Limits{})
	for id := range seen {
		if _, err := r.SchemaByID(ctx, id); err != nil {
			t.Fatalf("id %d after reopen: %v", id, err)
		}
	}
	next, err := r.Register(ctx, "new", SchemaRequest{Schema: orderV1, SchemaType: Protobuf})
	if err != nil || seen[next] {
		t.Fatalf("id after reopen %d (%v) reuses one of %v", next, err, seen)
	}
}
