package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestConfluentPythonConsumer: a stock consumer no one here wrote —
// confluent-kafka's ProtobufDeserializer (PyPI confluent-kafka), with
// classes that grpcio-tools generates from the same .proto files —
// decodes every record of a typed table's event topic on the real Kafka
// broker (testdata/consume_typed.py): upserts under two schema versions,
// JSON and binary writes, and deletes (tombstones). Each decoded record
// matches what wail's own reader finds at that partition and offset. The
// newer schema imports Confluent's built-in google/type/date.proto and
// google/protobuf/timestamp.proto (no references). The consumer runs twice:
// with the generated classes alone, and with confluent-kafka's
// SchemaRegistryClient on wail's registry, which fetches every writer
// schema by id (format=serialized) and resolves the records' message
// indexes in it, as a Confluent consumer given a registry does.
// Needs python3 with confluent-kafka[protobuf] and grpcio-tools (.ci/run
// installs them) and the broker (scripts/kafka.sh).
func TestConfluentPythonConsumer(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command("python3", "-c", "import confluent_kafka.schema_registry.protobuf, grpc_tools.protoc").CombinedOutput(); err != nil {
		servicetest.Missing(t, "python3 with confluent-kafka and grpcio-tools is missing: pip install 'confluent-kafka[protobuf,schemaregistry]' grpcio-tools ("+strings.TrimSpace(string(out))+")")
	}
	brokers := servicetest.KafkaBrokers(t)
	prefix := sqltest.Name("pyc_") // topics and group of its own on the shared broker
	const table = "orders"
	eventTopic := prefix + ".events." + table
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, prefix+".intents."+table, eventTopic, prefix+".dlq."+table)
	})
	srv, url := servertest.StartServer(t, func(c *config.Config) {
		c.Log.Kind = config.LogKafka
		c.Log.Kafka.Brokers = brokers
		c.Log.Kafka.ReplicationFactor = 1
		c.Log.Kafka.IntentTopic, c.Log.Kafka.EventTopic, c.Log.Kafka.DLQTopic = prefix+".intents.{table}", prefix+".events.{table}", prefix+".dlq.{table}"
		c.Resolver.Group = prefix
	})
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	keyProto := "shop/order_key.proto"
	valueProto := "shop/order.proto"
	keySrc := orderKey
	for f, src := range map[string]string{keyProto: keySrc, valueProto: ordersV1} {
		if err := os.MkdirAll(filepath.Join(dir, "shop"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const parts = 3
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: table, Partitions: parts,
		KeySchema:   &wailv1.TypeSchema{Schema: keySrc, Message: "shop.OrderKey"},
		ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "shop.Order"}})); err != nil {
		t.Fatal(err)
	}
	final := map[string]uint64{} // order id -> last version written
	put := func(id, js string, bin []byte) {
		t.Helper()
		r, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: okey(id), ValueJson: js, Value: bin}))
		if err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		final[id] = r.Msg.Result.Version
	}
	for i := range 12 {
		id := fmt.Sprintf("o-%d", i)
		if i%2 == 0 {
			put(id, fmt.Sprintf(`{"id":%q,"cents":"%d","lines":[{"sku":"tea","qty":%d}]}`, id, 100*i, i+1), nil)
		} else {
			put(id, "", order(id, int64(100*i), "jam", int32(i+1)))
		}
	}
	// A compatible version mid-run: later values have its field; the
	// consumer's classes are the newer file (they read both).
	if _, err := admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: table, ValueSchema: &wailv1.TypeSchema{Schema: pyOrdersV2}})); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, valueProto), []byte(pyOrdersV2), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 6; i < 16; i++ {
		id := fmt.Sprintf("o-%d", i)
		put(id, fmt.Sprintf(`{"id":%q,"cents":"%d","note":"n%d","due":{"year":2026,"month":12,"day":%d},"placedAt":"2026-11-30T20:00:%02dZ"}`, id, 7*i, i, i, i), nil)
	}
	for i := range 4 {
		id := fmt.Sprintf("o-%d", i*3)
		r, err := producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: table, Key: okey(id)}))
		if err != nil {
			t.Fatal(err)
		}
		final[id] = r.Msg.Result.Version
	}

	// wail's own reader: wait until every key's last version is on the bus.
	var recs map[string]pyRec // by partition/offset
	for {
		recs = map[string]pyRec{}
		last := map[string]uint64{}
		for p := int32(0); p < parts; p++ {
			_, end, err := srv.Log().Bounds(ctx, eventTopic, p)
			if err != nil {
				t.Fatal(err)
			}
			if end == 0 {
				continue
			}
			rd, err := srv.Log().NewReader(eventTopic, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			for rd.Position() < end {
				batch, err := rd.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for i := range batch {
					e, ok, err := eventbus.Decode(&batch[i])
					if !ok || err != nil {
						t.Fatalf("record %d/%d: %v %v", p, batch[i].Offset, ok, err)
					}
					recs[fmt.Sprintf("%d/%d", p, batch[i].Offset)] = pyRec{e, batch[i].Value == nil}
					last[string(e.Key)] = max(last[string(e.Key)], e.Version)
				}
			}
			rd.Close()
		}
		caught := true
		for id, v := range final {
			caught = caught && last[string(okey(id))] >= v
		}
		if caught {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the bus never caught up: %v of %v", last, final)
		}
		time.Sleep(200 * time.Millisecond)
	}

	ids := map[uint32]bool{} // the schema ids the records carry
	for _, r := range recs {
		if !r.tombstone {
			ids[r.e.SchemaID] = true
		}
	}
	for _, mode := range []string{"classes", "registry"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"testdata/consume_typed.py", strings.Join(brokers, ","), eventTopic, dir,
				keyProto, valueProto, "shop.OrderKey", "shop.Order", strconv.Itoa(len(recs))}
			if mode == "registry" {
				args = append(args, url+config.SchemaRegistryPath)
			}
			pyConsume(ctx, t, args, recs, ids, mode == "registry")
		})
	}
}

// pyOrdersV2 adds fields to ordersV1 (BACKWARD compatible), two of types
// from Confluent's built-in imports, which it imports with no reference.
const pyOrdersV2 = `syntax = "proto3";
package shop;
import "google/type/date.proto";
import "google/protobuf/timestamp.proto";
message Order {
  string id = 1;
  int64 cents = 2;
  repeated Line lines = 3;
  string note = 4;
  google.type.Date due = 5;
  google.protobuf.Timestamp placed_at = 6;
}
message Line { string sku = 1; int32 qty = 2; }
`

type pyRec struct {
	e         intent.Event
	tombstone bool
}

// pyConsume runs consume_typed.py and checks each record it decoded
// against wail's own reading (recs, by partition/offset); with the
// registry, that it fetched exactly the schema ids the records carry.
func pyConsume(ctx context.Context, t *testing.T, args []string, recs map[string]pyRec, ids map[uint32]bool, registry bool) {
	cmd := exec.CommandContext(ctx, "python3", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python consumer: %v\n%s\n%s", err, out, stderr.String())
	}
	var decoded, tombstones, v2 int
	fetched := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "records "); ok {
			if n != strconv.Itoa(len(recs)) {
				t.Fatalf("the consumer read %s records, wail's reader %d", n, len(recs))
			}
			continue
		}
		if f, ok := strings.CutPrefix(line, "fetched "); ok {
			fetched = f
			continue
		}
		var r struct {
			Partition, Offset int
			Key               map[string]any
			Value             map[string]any
			KeyID             uint32  `json:"key_id"`
			ValueID           *uint32 `json:"value_id"`
			Op, Version       string
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("consumer line %q: %v", line, err)
		}
		want, ok := recs[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]
		if !ok {
			t.Fatalf("the consumer read %d/%d, which wail's reader did not", r.Partition, r.Offset)
		}
		id, _ := r.Key["id"].(string)
		if !bytes.Equal(okey(id), want.e.Key) || r.Op != want.e.Op.String() || r.Version != strconv.FormatUint(want.e.Version, 10) {
			t.Errorf("record %d/%d: consumer %+v, wail %+v", r.Partition, r.Offset, r, want.e)
		}
		switch {
		case want.tombstone:
			if r.Value != nil || r.Op != "DELETE" {
				t.Errorf("record %d/%d: a tombstone decoded as %v (%s)", r.Partition, r.Offset, r.Value, r.Op)
			}
			tombstones++
		case r.Value == nil || r.Value["id"] != id || r.ValueID == nil || *r.ValueID != want.e.SchemaID:
			t.Errorf("record %d/%d: value %v under %v, want order %s under schema %d", r.Partition, r.Offset, r.Value, r.ValueID, id, want.e.SchemaID)
		case r.Value["note"] != nil:
			due, _ := r.Value["due"].(map[string]any)
			at, _ := r.Value["placedAt"].(string)
			if due["year"] != float64(2026) || !strings.HasPrefix(at, "2026-11-30T20:00:") {
				t.Errorf("record %d/%d: the built-in types decoded as due %v, placedAt %q", r.Partition, r.Offset, r.Value["due"], at)
			}
			v2++
		}
		decoded++
	}
	if registry {
		var sorted []int
		for id := range ids {
			sorted = append(sorted, int(id))
		}
		slices.Sort(sorted)
		var want []string
		for _, id := range sorted {
			want = append(want, strconv.Itoa(id))
		}
		if fetched != strings.Join(want, ",") || len(want) < 2 {
			t.Fatalf("the consumer fetched schemas %q from wail's registry, the records carry %q", fetched, want)
		}
	}
	if decoded != len(recs) || tombstones == 0 || v2 == 0 {
		t.Fatalf("decoded %d of %d records, %d tombstones, %d with the newer fields: the run proves nothing\n%s", decoded, len(recs), tombstones, v2, stderr.String())
	}
	t.Logf("the Python consumer decoded %d records (%d tombstones, %d under the newer schema)", decoded, tombstones, v2)
}
