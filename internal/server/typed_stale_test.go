package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
)

const (
	staleOrdersV1 = `syntax = "proto3";
package shop;
message Order { string id = 1; int64 cents = 2; }
`
	// staleOrdersV2 adds a field: BACKWARD compatible.
	staleOrdersV2 = `syntax = "proto3";
package shop;
message Order { string id = 1; int64 cents = 2; string note = 3; }
`
)

// TestCreateTypesStaleCatalog: a typed create decides whether the table's
// types exist from the catalog entry as the store holds it, not from this
// process's copy, which another process's drop or create makes stale for
// up to catalog_refresh. Before:
//   - dropped elsewhere, still listed here: the create made the table
//     again (created) without registering its schemas, so the subject
//     kept the dropped table's, and writes of the new schema were refused;
//   - created elsewhere, not listed here yet: the create answered that the
//     table exists (created false) after registering its schema as a new
//     version of the existing table's subject, evolving it behind an
//     answer that said nothing changed.
func TestCreateTypesStaleCatalog(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Tables = nil
	cfg.CatalogRefresh = time.Hour // this process's copy stays as it is
	r := runServer(t, cfg, seams{})
	s := r.srv
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, r.url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subject := s.subject("orders", partValue)
	create := func(schema string) (*wailv1.CreateTableResponse, error) {
		resp, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
			Name: "orders", Partitions: 1, ValueSchema: &wailv1.TypeSchema{Schema: schema, Message: "Order"}}))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	versions := func() int {
		vs, err := s.schemas.Versions(ctx, subject, false)
		if err != nil {
			t.Fatal(err)
		}
		return len(vs)
	}
	entry := func() []byte {
		tables, err := s.store.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			if tb.Name == "orders" {
				return tb.Spec
			}
		}
		return nil
	}

	// Dropped by another process: its entry and rows are gone, this
	// process still lists it.
	first, err := create(staleOrdersV1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.store.SwapTable(ctx, "orders", entry(), nil); err != nil || !ok {
		t.Fatalf("removing the entry: %v %v", ok, err)
	}
	if err := s.store.DropTable(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.table("orders"); !ok {
		t.Fatal("the test needs this process's copy stale")
	}
	got, err := create(staleOrdersV2)
	if err != nil || !got.Created {
		t.Fatalf("create after a drop elsewhere: %v %v", got, err)
	}
	withNote := protowire.AppendString(protowire.AppendTag(nil, 3, protowire.BytesType), "gift")
	if _, err := r.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), Value: withNote})); err != nil {
		t.Errorf("a value of the schema the table was created with: %v", err)
	}
	if n := versions(); n != 2 {
		t.Errorf("the subject has %d versions, want 2 (the dropped table's, the new one's)", n)
	}

	// Created by another process: its entry is saved and its schema
	// registered, this process does not list it yet.
	if _, ok, err := s.store.SwapTable(ctx, "orders", entry(), nil); err != nil || !ok {
		t.Fatalf("removing the entry: %v %v", ok, err)
	}
	if err := s.catalog.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.table("orders"); ok {
		t.Fatal("the test needs the table unlisted here")
	}
	if _, err := s.schemas.Register(ctx, subject, schemaRequest(&wailv1.TypeSchema{Schema: staleOrdersV1})); err != nil {
		t.Fatal(err)
	}
	before := versions()
	elsewhere := catalog.FromProto(first.Table)
	elsewhere.CreatedAt = time.Now().Truncate(time.Microsecond)
	spec, err := proto.MarshalOptions{Deterministic: true}.Marshal(elsewhere.Proto())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.store.SwapTable(ctx, "orders", nil, spec); err != nil || !ok {
		t.Fatalf("saving the entry: %v %v", ok, err)
	}
	third := strings.Replace(staleOrdersV2, "string note = 3;", "string note = 3; string gift = 4;", 1)
	got, err = create(third)
	if err != nil || got.Created {
		t.Fatalf("create of a table made elsewhere: %v %v, want it answered existing", got, err)
	}
	if n := versions(); n != before {
		t.Errorf("a create answered \"exists\" registered a version: %d versions, was %d", n, before)
	}
}
