package schemaregistry

import (
	"context"
	"encoding/hex"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/schema"
	"github.com/wail-cdc/wail/internal/servicetest"
)

const shopProto = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 amount = 2;
  map<string, Line> lines = 3;
  message Line { string sku = 1; int32 qty = 2; }
}
`

// TestConfluentPythonWire: records in the Confluent wire format cross
// between wail's Go code and confluent-kafka's Python serializers, under
// schemas in wail's registry. Python's ProtobufSerializer registers its
// schema (as a base64 descriptor: another form than the text, so another
// id) and writes a nested message; wail reads the schema id and message
// indexes (which count map entries in that form), finds the schema in the
// registry and decodes the message. wail writes a record Python's ProtobufDeserializer
// decodes.
func TestConfluentPythonWire(t *testing.T) {
	t.Parallel()
	if err := exec.Command("python3", "-c", "import confluent_kafka.schema_registry.protobuf").Run(); err != nil {
		servicetest.Missing(t, "python3 with confluent-kafka is missing: pip install 'confluent-kafka[protobuf,schemaregistry]'")
	}
	_, r, url := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	local, err := schema.Compile(ctx, schema.File{Path: "shop.proto", Source: shopProto}, nil, schema.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	order, _ := local.MessageType("shop.Order")
	payload, err := order.FromJSON([]byte(`{"id": "o-1", "amount": "250", "lines": {"a": {"sku": "x", "qty": 2}}}`))
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: shopProto, SchemaType: Protobuf})
	if err != nil {
		t.Fatal(err)
	}
	record := schema.AppendWire(nil, uint32(id), order.Indexes(), payload)

	out, err := exec.CommandContext(ctx, "python3", "testdata/confluent_wire.py", url,
		hex.EncodeToString(local.DescriptorSet()), hex.EncodeToString(record)).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var serialized, deserialized string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "serialized "); ok {
			serialized = v
		}
		if v, ok := strings.CutPrefix(l, "deserialized "); ok {
			deserialized = v
		}
	}
	if deserialized != `{"amount": "250", "id": "o-1", "lines": {"a": {"qty": 2, "sku": "x"}}}` {
		t.Fatalf("Python read wail's record as %q\n%s", deserialized, out)
	}

	// Python's record: the registry holds its schema under the id it names.
	b, err := hex.DecodeString(serialized)
	if err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	pid, indexes, body, err := schema.ParseWire(b)
	if err != nil {
		t.Fatal(err)
	}
	// Python works from descriptors, where Order's map entry LinesEntry
	// is nested message 0 and Line 1; it registered that form.
	if !slices.Equal(indexes, []int{0, 1}) {
		t.Fatalf("Python's message indexes for shop.Order.Line: %v, want [0 1]", indexes)
	}
	st, err := r.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	registered, err := r.compiledByID(ctx, st, int(pid))
	if err != nil {
		t.Fatalf("the id Python wrote (%d): %v", pid, err)
	}
	if int(pid) == id || len(schema.Diff(local, registered)) != 0 {
		t.Fatalf("Python's descriptor form got id %d (the text form has %d), differences %v", pid, id, schema.Diff(local, registered))
	}
	line, err := registered.ByIndexes(indexes)
	if err != nil {
		t.Fatal(err)
	}
	j, err := line.ToJSON(body)
	if err != nil || line.Descriptor().FullName() != "shop.Order.Line" || !strings.Contains(string(j), `"sku":"x"`) || !strings.Contains(string(j), `"qty":2`) {
		t.Fatalf("wail read Python's record as %s %s, %v", line.Descriptor().FullName(), j, err)
	}
}
