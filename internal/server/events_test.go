package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protowire"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/schema"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

const orderKey = `syntax = "proto3"; package shop; message OrderKey { string id = 1; }`

// okey is shop.OrderKey{id} in Protobuf binary.
func okey(id string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), id)
}

// latestID is the id of a subject's latest schema, from the registry's
// REST API.
func latestID(t *testing.T, url, subject string) uint32 {
	t.Helper()
	resp, err := http.Get(url + config.SchemaRegistryPath + "/subjects/" + subject + "/versions/latest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ ID uint32 }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.ID == 0 {
		t.Fatalf("latest of %s: %+v, %v", subject, v, err)
	}
	return v.ID
}

// busRecords reads every record of a table's event topic.
func busRecords(t *testing.T, srv *server.Server, table string, parts int32) []intentlog.Record {
	t.Helper()
	var out []intentlog.Record
	for p := range parts {
		_, end, err := srv.Log().Bounds(t.Context(), eventbus.Topic(table), p)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := srv.Log().NewReader(eventbus.Topic(table), p, 0)
		if err != nil {
			t.Fatal(err)
		}
		for rd.Position() < end {
			recs, err := rd.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, recs...)
		}
		rd.Close()
	}
	return out
}

// TestTypedEvents: a typed table's events are in the Confluent wire
// format (key under the key subject's schema, value under the schema its
// row was written with, a delete a tombstone with wail's headers), the
// rows keep their schema ids, a row written under an older schema is
// published with its id after a newer one is registered, and a value that
// fits no schema (validation off) is dead-lettered, never published.
func TestTypedEvents(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, nil)
	c := clients{url: url, producer: wailv1connect.NewProducerServiceClient(http.DefaultClient, url),
		admin: wailv1connect.NewAdminServiceClient(http.DefaultClient, url), events: wailv1connect.NewEventServiceClient(http.DefaultClient, url)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const parts = 2
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "shop", Partitions: parts,
		KeySchema: &wailv1.TypeSchema{Schema: orderKey, Message: "OrderKey"}, ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}})); err != nil {
		t.Fatal(err)
	}
	keyID, v1 := latestID(t, url, "wail.events.shop-key"), latestID(t, url, "wail.events.shop-value")
	put := func(id string, value []byte, js string) uint64 {
		t.Helper()
		r, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "shop", Key: okey(id), Value: value, ValueJson: js}))
		if err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		return r.Msg.Result.Version
	}
	va := put("a", order("o-a", 100, "tea", 1), "")
	await := func(id string, version uint64) *wailv1.ChangeEvent {
		t.Helper()
		stream, err := c.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "shop", From: "beginning"}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		for stream.Receive() {
			if e := stream.Msg().Event; e != nil && bytes.Equal(e.Key, okey(id)) && e.Version >= version {
				return e
			}
		}
		t.Fatalf("no event of %s at %d: %v", id, version, stream.Err())
		return nil
	}
	if e := await("a", va); e.SchemaId != v1 {
		t.Fatalf("event of a: schema id %d, want %d", e.SchemaId, v1)
	}

	// A compatible version; a row written under v1 after it (by a writer
	// past the proxy, published by reconcile) keeps v1's id.
	if _, err := c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "shop", ValueSchema: &wailv1.TypeSchema{Schema: ordersV2}})); err != nil {
		t.Fatal(err)
	}
	v2 := latestID(t, url, "wail.events.shop-value")
	if v2 == v1 {
		t.Fatal("the alter registered no new version")
	}
	vb := max(hlc.At(time.Now()), va+1)
	if out, err := srv.Store().Apply(ctx, "shop", []store.Mutation{{Key: okey("b"), Value: order("o-b", 200, "jam", 2), Version: vb, SchemaID: v1}}); err != nil || !out[0].Applied {
		t.Fatalf("write b under v1: %v %v", out, err)
	}
	if _, err := c.admin.ReconcileTable(ctx, connect.NewRequest(&wailv1.ReconcileTableRequest{Name: "shop"})); err != nil {
		t.Fatal(err)
	}
	if e := await("b", vb); e.SchemaId != v1 {
		t.Errorf("b, written under v1 and published after v2: schema id %d, want %d", e.SchemaId, v1)
	}
	withNote := protowire.AppendString(protowire.AppendTag(order("o-c", 300, "oat", 3), 4, protowire.BytesType), "gift")
	vc := put("c", nil, `{"id":"o-c","cents":"300","lines":[{"sku":"oat","qty":3}],"note":"gift"}`)
	if e := await("c", vc); e.SchemaId != v2 || !bytes.Equal(e.Value, withNote) {
		t.Errorf("c: schema id %d value %x, want %d %x", e.SchemaId, e.Value, v2, withNote)
	}
	for id, want := range map[string]uint32{"a": v1, "b": v1, "c": v2} {
		row, found, err := srv.Store().Get(ctx, "shop", okey(id), 0)
		if err != nil || !found || row.SchemaID != want {
			t.Errorf("stored row %s: %+v %v %v, want schema id %d", id, row, found, err, want)
		}
	}
	vd, err := c.producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "shop", Key: okey("a")}))
	if err != nil {
		t.Fatal(err)
	}
	if e := await("a", vd.Msg.Result.Version); e.Op != wailv1.Op_OP_DELETE || e.SchemaId != 0 {
		t.Errorf("delete event %+v", e)
	}

	// Validation off: a value that fits no schema is acknowledged, then
	// dead-lettered by the drift guard, never published.
	skip := true
	if _, err := c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "shop", SkipValidation: &skip})); err != nil {
		t.Fatal(err)
	}
	put("z", []byte{0xff, 0xff}, "")
	var letter *wailv1.DeadLetter
	for letter == nil && ctx.Err() == nil {
		list, err := c.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "shop"}))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list.Msg.Entries {
			if bytes.Equal(e.Letter.Key, okey("z")) {
				letter = e.Letter
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if letter == nil || !bytes.Contains([]byte(letter.Error), []byte("fits no")) {
		t.Fatalf("dead letter of the drifted value: %v", letter)
	}

	// The records themselves, as a Kafka consumer gets them.
	recs := busRecords(t, srv, "shop", parts)
	seen := map[string]bool{}
	for _, r := range recs {
		kid, kidx, k, err := schema.ParseWire(r.Key)
		if err != nil || kid != keyID || fmt.Sprint(kidx) != "[0]" {
			t.Fatalf("record key %x: %d %v %v, want the key schema %d", r.Key, kid, kidx, err, keyID)
		}
		e, ok, err := eventbus.Decode(&r)
		if !ok || err != nil {
			t.Fatalf("record %x/%x: %v %v", r.Key, r.Value, ok, err)
		}
		if bytes.Equal(k, okey("z")) {
			t.Fatalf("the drifted value was published: %+v", e)
		}
		seen[string(k)+"/"+e.Op.String()] = true
		if e.Op.String() == "DELETE" {
			if r.Value != nil {
				t.Errorf("delete record with a value %x", r.Value)
			}
			continue
		}
		id, idx, _, err := schema.ParseWire(r.Value)
		if err != nil || id != e.SchemaID || fmt.Sprint(idx) != "[0]" {
			t.Errorf("value %x: %d %v %v", r.Value, id, idx, err)
		}
	}
	for _, want := range []string{"a/UPSERT", "b/UPSERT", "c/UPSERT", "a/DELETE"} {
		id, _, _ := bytes.Cut([]byte(want), []byte("/"))
		if !seen[string(okey(string(id)))+want[len(id):]] {
			t.Errorf("no record %s among %d", want, len(recs))
		}
	}
}

// TestTypedDocColumn: on PostgreSQL a typed write (binary or JSON) also
// puts the value's JSON in the row's doc column, with its schema id, for
// plain SQL; an untyped write leaves both empty.
func TestTypedDocColumn(t *testing.T) {
	t.Parallel()
	dsn := sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.Store = config.Store{Kind: config.StorePostgres, DSN: dsn, MaxConns: 4, QueryTimeout: 5 * time.Second}
	})
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "plain"})); err != nil {
		t.Fatal(err)
	}
	id := latestID(t, url, "wail.events.orders-value")
	for _, req := range []*wailv1.PutRequest{
		{Table: "orders", Key: []byte("bin"), Value: order("o-1", 1250, "tea", 2)},
		{Table: "orders", Key: []byte("json"), ValueJson: `{"id":"o-2","cents":"7"}`},
		{Table: "plain", Key: []byte("k"), Value: []byte(`{"id":"x"}`)},
	} {
		if _, err := producer.Put(ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range []struct {
		table, key, wantID string
		schema             uint32
	}{{"wail_orders", "bin", "o-1", id}, {"wail_orders", "json", "o-2", id}, {"wail_plain", "k", "", 0}} {
		var got *string
		var schemaID int64
		err := conn.QueryRow(ctx, `SELECT doc->>'id', schema_id FROM `+c.table+` WHERE key = $1`, []byte(c.key)).Scan(&got, &schemaID)
		if err != nil {
			t.Fatal(err)
		}
		if (c.wantID == "") != (got == nil) || got != nil && *got != c.wantID || uint32(schemaID) != c.schema {
			t.Errorf("%s/%s: doc id %v schema %d, want %q %d", c.table, c.key, got, schemaID, c.wantID, c.schema)
		}
	}
	var cents string
	if err := conn.QueryRow(ctx, `SELECT doc->>'cents' FROM wail_orders WHERE doc @> '{"lines":[{"sku":"tea"}]}'`).Scan(&cents); err != nil || cents != "1250" {
		t.Errorf("a query into the doc: %q %v", cents, err)
	}
}
