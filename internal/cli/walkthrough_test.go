package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// walkthrough tags the README's blocks that TestReadmeWalkthrough runs.
const walkthrough = "walkthrough"

// TestReadmeWalkthrough runs the README's typed-table walk-through (its
// fences tagged "walkthrough") as written, on the real Kafka broker: the
// .proto and the consumer script are written out from their blocks, the
// server starts from the README's serve line (on topics and a group of
// the test's own: the broker is shared), the wail lines create the table
// and write a JSON and a binary value, and the README's protoc and
// consumer lines run as a reader would run them: confluent-kafka's
// Consumer and ProtobufDeserializer, with its SchemaRegistryClient on
// wail's registry, must print both events decoded.
// Needs python3 with confluent-kafka[protobuf,schemaregistry] and
// grpcio-tools (.ci/run installs them) and the broker (scripts/kafka.sh).
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a server on Kafka and a Python consumer")
	}
	if out, err := exec.Command("python3", "-c", "import confluent_kafka.schema_registry.protobuf, grpc_tools.protoc").CombinedOutput(); err != nil {
		servicetest.Missing(t, "python3 with confluent-kafka and grpcio-tools is missing: pip install 'confluent-kafka[protobuf,schemaregistry]' grpcio-tools ("+strings.TrimSpace(string(out))+")")
	}
	brokers := strings.Join(servicetest.KafkaBrokers(t), ",")
	prefix := sqltest.Name("readme_")
	t.Cleanup(func() { deleteTopics(brokers, prefix) })
	dir := t.TempDir()
	conf := filepath.Join(dir, "topics.yaml")
	if err := os.WriteFile(conf, []byte("log:\n  kafka:\n    intent_topic: "+prefix+".intents.{table}\n    event_topic: "+prefix+
		".events.{table}\n    dlq_topic: "+prefix+".dlq.{table}\nresolver:\n  group: "+prefix+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var addr string
	stop := func() {}
	defer func() { stop() }()
	var files, wails []string
	var consumed string
	for _, b := range codeBlocks(t, "../../README.md") {
		if b.tag != walkthrough {
			continue
		}
		switch b.lang {
		case "proto", "python":
			// The file's name is the first word of its first comment line.
			first, _, _ := strings.Cut(b.text, "\n")
			name := strings.TrimSuffix(strings.Fields(strings.TrimLeft(first, "/# "))[0], ":")
			if err := os.WriteFile(filepath.Join(dir, name), []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
			continue
		case "sh":
		default:
			t.Fatalf("README.md:%d: a walk-through block in %q: teach the test", b.line, b.lang)
		}
		for _, l := range shellLines(b.text) {
			where := b.file + ":" + strconv.Itoa(b.line) + ": " + l
			args, isWail := wailArgs(l)
			switch {
			case isWail && args[0] == "serve":
				for i := range args {
					args[i] = strings.ReplaceAll(args[i], "localhost:9092", brokers)
				}
				addr, stop = runServeLine(t, where, append(withFiles(args, dir), "--config", conf), filepath.Join(dir, "data"))
			case isWail:
				if addr == "" {
					t.Fatalf("%s: no server yet", where)
				}
				runClientLine(t, where, withFiles(args, dir), addr)
				wails = append(wails, args[0])
			case strings.HasPrefix(l, "python3 "):
				if addr == "" {
					t.Fatalf("%s: no server yet", where)
				}
				l = strings.NewReplacer("localhost:7070", strings.TrimPrefix(addr, "http://"), "localhost:9092", brokers,
					"wail.events.", prefix+".events.").Replace(l)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				cmd := exec.CommandContext(ctx, "bash", "-c", l)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Fatalf("%s: %v\n%s", where, err, out)
				}
				if strings.Contains(l, "consume.py") {
					consumed = string(out)
				}
			default:
				t.Errorf("%s: a walk-through line the test does not know how to run: teach it", where)
			}
		}
	}
	if strings.Join(files, " ") != "order.proto consume.py" || strings.Join(wails, " ") != "table put put" {
		t.Fatalf("the walk-through wrote %q and ran %q: its blocks changed, update the test", files, wails)
	}
	t.Logf("the README's consumer printed:\n%s", consumed)
	for _, want := range []string{
		`o-1 UPSERT version `, `{"id": "o-1", "amount": "1250", "placedAt": "2026-11-30T20:00:00Z"}`,
		`o-2 UPSERT version `, `{"id": "o-2", "amount": "1250"}`,
	} {
		if !strings.Contains(consumed, want) {
			t.Errorf("the README's consumer did not print %s", want)
		}
	}
}

// deleteTopics deletes a test's topics (named <prefix>.*) from the shared
// broker.
func deleteTopics(brokers, prefix string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, prefix+".") {
			mine = append(mine, name)
		}
	}
	_, _ = adm.DeleteTopics(ctx, mine...)
}
