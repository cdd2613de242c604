package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
)

const ordersV1 = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 cents = 2;
  repeated Line lines = 3;
}
message Line { string sku = 1; int32 qty = 2; }
`

// ordersV2 adds a field: BACKWARD compatible.
const ordersV2 = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 cents = 2;
  repeated Line lines = 3;
  string note = 4;
}
message Line { string sku = 1; int32 qty = 2; }
`

// order is shop.Order{id, cents, lines: [{sku, qty}]} in Protobuf binary,
// as protojson-converted values are (deterministic, fields in order).
func order(id string, cents int64, sku string, qty int32) []byte {
	var line []byte
	line = protowire.AppendTag(line, 1, protowire.BytesType)
	line = protowire.AppendString(line, sku)
	line = protowire.AppendTag(line, 2, protowire.VarintType)
	line = protowire.AppendVarint(line, uint64(qty))
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, id)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(cents))
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	return protowire.AppendBytes(b, line)
}

// TestTypedTable: a typed table takes the same row as Protobuf binary and
// as JSON and stores the same bytes; values that do not fit its schema are
// refused with InvalidArgument naming the problem; an alter evolves the
// schema (compatibility-checked) and the proxy takes the new field at
// once; an untyped table refuses JSON values.
func TestTypedTable(t *testing.T) {
	t.Parallel()
	c := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if tb := created.Msg.Table; tb.ValueMessage != "shop.Order" || tb.KeyMessage != "" || tb.SkipValidation {
		t.Fatalf("created %+v", tb)
	}
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "plain"})); err != nil {
		t.Fatal(err)
	}

	bin := order("o-1", 1250, "tea", 2)
	const js = `{"id":"o-1","cents":"1250","lines":[{"sku":"tea","qty":2}]}`
	get := func(key string) []byte {
		t.Helper()
		got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte(key)}))
		if err != nil || !got.Msg.Found {
			t.Fatalf("get %s: %v, %v", key, got, err)
		}
		return got.Msg.Value
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("bin"), Value: bin})); err != nil {
		t.Fatalf("binary put: %v", err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("json"), ValueJson: js})); err != nil {
		t.Fatalf("JSON put: %v", err)
	}
	wres, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "orders", Key: []byte("batch"), Op: wailv1.Op_OP_UPSERT, ValueJson: `{"id":"o-1","cents":1250,"lines":[{"sku":"tea","qty":2}]}`},
		{Table: "orders", Key: []byte("bad"), Op: wailv1.Op_OP_UPSERT, ValueJson: `{"id":"o-2","colour":"red"}`},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if r := wres.Msg.Results; r[0].Error != nil || r[1].Error == nil || r[1].Error.Code != "invalid_argument" || !strings.Contains(r[1].Error.Message, "colour") {
		t.Fatalf("batch results %v", r)
	}
	for _, k := range []string{"bin", "json", "batch"} {
		if got := get(k); !bytes.Equal(got, bin) {
			t.Fatalf("%s stored %x, want the binary row %x", k, got, bin)
		}
	}
	// Read back as JSON: the same row, whichever way it was written.
	for _, k := range []string{"bin", "json"} {
		got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte(k), ValueJson: true}))
		if err != nil || got.Msg.ValueJson != js || !bytes.Equal(got.Msg.Value, bin) {
			t.Fatalf("get %s as JSON: %v, %v; want %s", k, got, err, js)
		}
	}
	if _, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte("absent"), ValueJson: true})); err != nil {
		t.Fatalf("JSON get of a missing key: %v", err)
	}
	// The events carry the stored bytes: the JSON-written row's event is
	// the binary one.
	stream, err := c.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "orders", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]byte{}
	for len(seen) < 3 && stream.Receive() {
		seen[string(stream.Msg().Event.Key)] = stream.Msg().Event.Value
	}
	stream.Close()
	for _, k := range []string{"bin", "json", "batch"} {
		if !bytes.Equal(seen[k], bin) {
			t.Fatalf("event of %s: %x, want %x (events %v, %v)", k, seen[k], bin, seen, stream.Err())
		}
	}

	// Values that do not fit: each refused with InvalidArgument and a
	// message that says what is wrong; nothing is stamped.
	withNote := protowire.AppendString(protowire.AppendTag(bytes.Clone(bin), 4, protowire.BytesType), "gift")
	refused := []struct {
		name string
		req  *wailv1.PutRequest
		want string
	}{
		{"unknown field number", &wailv1.PutRequest{Value: withNote}, "field number 4 is not in shop.Order"},
		{"unknown nested field", &wailv1.PutRequest{Value: append(order("o", 1, "x", 1)[:0:0], protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))...)}, "field number 9 is not in shop.Line"},
		{"not protobuf", &wailv1.PutRequest{Value: []byte{0xff, 0xff, 0xff}}, "not a shop.Order in Protobuf binary"},
		{"JSON of another shape", &wailv1.PutRequest{ValueJson: `{"id": 7}`}, "not a shop.Order in Protobuf JSON"},
		{"JSON unknown field", &wailv1.PutRequest{ValueJson: `{"note":"gift"}`}, "note"},
		{"both value and JSON", &wailv1.PutRequest{Value: bin, ValueJson: js}, "not both"},
		{"JSON to an untyped table", &wailv1.PutRequest{Table: "plain", ValueJson: js}, "needs a typed table"},
	}
	for _, tc := range refused {
		req := tc.req
		if req.Table == "" {
			req.Table = "orders"
		}
		req.Key = []byte("refused")
		_, err := c.producer.Put(ctx, connect.NewRequest(req))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.Contains(ce.Message(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument with %q", tc.name, err, tc.want)
		}
	}
	if got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte("refused")})); err != nil || got.Msg.Found {
		t.Fatalf("a refused value was stored: %v, %v", got, err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "plain", Key: []byte("k"), Value: bin})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "plain", Key: []byte("k"), ValueJson: true})); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "not typed") {
		t.Fatalf("JSON get on an untyped table: %v", err)
	}

	// An incompatible schema is refused by the subject's BACKWARD check.
	const breaking = `syntax = "proto3"; package shop; message Order { int64 id = 1; } message Line { string sku = 1; }`
	_, err = c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: breaking}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("incompatible alter: %v", err)
	}
	// A table's message type cannot change.
	_, err = c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: ordersV2, Message: "Line"}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "cannot change") {
		t.Fatalf("message type change: %v", err)
	}
	// Evolution: the new field is taken at once.
	alt, err := c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: ordersV2}}))
	if err != nil || !alt.Msg.Changed {
		t.Fatalf("evolve: %v, %v", alt, err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("note"), Value: withNote})); err != nil {
		t.Fatalf("the evolved field: %v", err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("note-json"), ValueJson: `{"id":"o-1","cents":"1250","lines":[{"sku":"tea","qty":2}],"note":"gift"}`})); err != nil {
		t.Fatalf("the evolved field in JSON: %v", err)
	}
	if got := get("note-json"); !bytes.Equal(got, withNote) {
		t.Fatalf("evolved JSON stored %x, want %x", got, withNote)
	}
	// A field removed again (compatible under BACKWARD): rows that have it
	// still print, without it.
	v3 := strings.Replace(ordersV2, "string note = 4;", "reserved 4;", 1)
	if _, err := c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: v3}})); err != nil {
		t.Fatalf("remove the field: %v", err)
	}
	if got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte("note"), ValueJson: true})); err != nil || got.Msg.ValueJson != js {
		t.Fatalf("an older row as JSON: %v, %v; want %s", got, err, js)
	}

	// Validation off: any bytes go; JSON is still converted.
	skip := true
	if _, err := c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", SkipValidation: &skip})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("raw"), Value: []byte{0xff}})); err != nil {
		t.Fatalf("validation off: %v", err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("json2"), ValueJson: js})); err != nil || !bytes.Equal(get("json2"), bin) {
		t.Fatalf("JSON with validation off: %v", err)
	}
	// Deletes carry no value to check.
	if _, err := c.producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "orders", Key: []byte("bin")})); err != nil {
		t.Fatal(err)
	}
}

// TestTypedTableCreateRefused: a typed create with a schema that does not
// compile, or without the message it names, creates nothing.
func TestTypedTableCreateRefused(t *testing.T) {
	t.Parallel()
	c := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		ts   *wailv1.TypeSchema
		want string
	}{
		{"syntax", &wailv1.TypeSchema{Schema: `syntax = "proto3"; message {`, Message: "Order"}, "schema"},
		{"no such message", &wailv1.TypeSchema{Schema: ordersV1, Message: "Invoice"}, "Invoice"},
		{"no message named", &wailv1.TypeSchema{Schema: ordersV1}, "shop.Order"},
		{"missing import", &wailv1.TypeSchema{Schema: `syntax = "proto3"; import "money.proto"; message Order { Money m = 1; }`, Message: "Order"}, "money.proto"},
	} {
		_, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders", ValueSchema: tc.ts}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument with %q", tc.name, err, tc.want)
		}
	}
	list, err := c.admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil || len(list.Msg.Tables) != 0 {
		t.Fatalf("tables after refused creates: %v, %v", list, err)
	}
}

// TestTypedTableFromConfig: a table of the configuration with value_proto
// is created typed, its schema registered, and takes JSON values.
func TestTypedTableFromConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "orders.proto")
	if err := os.WriteFile(file, []byte(ordersV1), 0o644); err != nil {
		t.Fatal(err)
	}
	off := false
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "orders", ValueProto: file, ValueMessage: "shop.Order"}, {Name: "loose", ValueProto: file, ValueMessage: "Order", Validate: &off}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	list, err := c.admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil || len(list.Msg.Tables) != 2 {
		t.Fatalf("tables: %v, %v", list, err)
	}
	for _, tb := range list.Msg.Tables {
		if tb.ValueMessage != "shop.Order" || tb.SkipValidation != (tb.Name == "loose") {
			t.Fatalf("table %+v", tb)
		}
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), ValueJson: `{"id":"o-1"}`})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), Value: []byte{0xff}})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad value on a validated table: %v", err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "loose", Key: []byte("k"), Value: []byte{0xff}})); err != nil {
		t.Fatalf("bad value with validate: false: %v", err)
	}
	resp, err := http.Get(c.url + config.SchemaRegistryPath + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"wail.events.orders-value"`) || !strings.Contains(string(b), `"wail.events.loose-value"`) {
		t.Fatalf("subjects %s", b)
	}
	// The subject deleted in the registry: a write that needs the schema
	// is Unavailable, saying which subject; nothing is stamped.
	req, _ := http.NewRequest(http.MethodDelete, c.url+config.SchemaRegistryPath+"/subjects/wail.events.loose-value", nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusOK {
		t.Fatalf("delete subject: %d", del.StatusCode)
	}
	_, err = c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "loose", Key: []byte("j"), ValueJson: `{"id":"o-1"}`}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "subject wail.events.loose-value") {
		t.Fatalf("write without a schema: %v", err)
	}
	if got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "loose", Key: []byte("j")})); err != nil || got.Msg.Found {
		t.Fatalf("a write refused for its schema was stored: %v, %v", got, err)
	}
}

// TestTypedTableNewVersionElsewhere: a version registered past this
// process (here: over the registry's HTTP API, as another process or a
// Confluent client would) is taken at once by a value that needs it, even
// while the cached schema is within catalog_refresh; a value that fits
// no version is still refused.
func TestTypedTableNewVersionElsewhere(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.CatalogRefresh = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}})); err != nil {
		t.Fatal(err)
	}
	bin := order("o-1", 1250, "tea", 2)
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), Value: bin})); err != nil {
		t.Fatal(err) // the schema is cached now
	}
	withNote := protowire.AppendString(protowire.AppendTag(bytes.Clone(bin), 4, protowire.BytesType), "gift")
	body, _ := json.Marshal(map[string]string{"schemaType": "PROTOBUF", "schema": ordersV2})
	resp, err := http.Post(c.url+config.SchemaRegistryPath+"/subjects/wail.events.orders-value/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register v2 over HTTP: %d", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond) // past recheck, well within catalog_refresh
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), Value: withNote})); err != nil {
		t.Fatalf("a value of the version registered elsewhere: %v", err)
	}
	unknown := protowire.AppendVarint(protowire.AppendTag(bytes.Clone(bin), 9, protowire.VarintType), 1)
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), Value: unknown})); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "field number 9") {
		t.Fatalf("a value no version has: %v", err)
	}
}
