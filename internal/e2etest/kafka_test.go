package e2etest

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kfake"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store/pebble"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// kafkaBrokers returns the test broker, or skips (fails under CI=true) when
// it is not reachable.
func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	brokers := os.Getenv("WAIL_TEST_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:9092"
	}
	list := strings.Split(brokers, ",")
	conn, err := net.DialTimeout("tcp", list[0], time.Second)
	if err != nil {
		msg := "Kafka not reachable at " + list[0] + ": run scripts/kafka.sh up (" + err.Error() + ")"
		servicetest.Missing(t, msg)
	}
	conn.Close()
	return list
}

// TestInvariantsKafka runs the invariant suite with Kafka as the intent log
// and the event bus, restarting the broker mid-stream.
func TestInvariantsKafka(t *testing.T) {
	brokers := kafkaBrokers(t)
	opts := DefaultOptions()
	opts.Table = sqltest.Name("inv_")
	opts.Disrupt = func(t *testing.T) {
		start := time.Now()
		out, err := command("bash", filepath.Join("..", "..", "scripts", "kafka.sh"), "restart")
		if err != nil {
			t.Fatalf("restart kafka: %v\n%s", err, out)
		}
		t.Logf("kafka restarted in %s", time.Since(start).Round(time.Millisecond))
	}
	Run(t, kafkaBackends(brokers), opts)
}

// TestInvariantsKafkaFake runs the invariant suite on franz-go's in-process
// fake broker (kfake), with the resolvers as transactional group members:
// the Kafka code paths on a machine without a broker.
func TestInvariantsKafkaFake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	Run(t, kafkaBackends(c.ListenAddrs()), DefaultOptions())
}

// kafkaBackends opens Kafka as log and bus (resolvers join groups) and a
// Pebble store.
func kafkaBackends(brokers []string) func(t *testing.T) Backends {
	return func(t *testing.T) Backends {
		log, err := kafka.Open(context.Background(), kafka.Options{Brokers: brokers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { log.Close() })
		st, err := pebble.Open(t.TempDir(), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return Backends{Log: log, Store: st, Join: func(group, instance string) resolver.JoinFunc {
			return server.GroupJoin(log, group, instance, 2)
		}}
	}
}

// TestProxyAndResolverProcesses runs `wail proxy` and `wail resolve` as
// separate processes sharing PostgreSQL and Kafka. A table created through
// the proxy after both started is resolved by the resolver process, whose
// event stream delivers the write; the resolver process refuses writes.
func TestProxyAndResolverProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	brokers := kafkaBrokers(t)
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	bin := buildWail(t)
	common := []string{"--store", "postgres", "--dsn", dsn, "--log", "kafka", "--brokers", strings.Join(brokers, ",")}
	res := startWail(t, bin, append([]string{"resolve", "--data-dir", t.TempDir()}, common...)...)
	px := startWail(t, bin, append([]string{"proxy", "--data-dir", t.TempDir(), "--proxy-id", "1"}, common...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := sqltest.Name("mp_")
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+px.addr)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: table, Partitions: 2})); err != nil {
		t.Fatal(err)
	}
	put := func(addr string) (*connect.Response[wailv1.PutResponse], error) {
		pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+addr)
		return pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: []byte("k"), Value: []byte("v")}))
	}
	if _, err := put(res.addr); connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Fatalf("a write to the resolver process: %v, want unimplemented", err)
	}
	resp, err := put(px.addr)
	if err != nil {
		t.Fatal(err)
	}
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, "http://"+res.addr)
	var stream *connect.ServerStreamForClient[wailv1.SubscribeResponse]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		// the resolver process learns about the table at its next catalog
		// refresh; until then it answers not_found (on the stream)
		stream, err = events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: "beginning"}))
		if err == nil && stream.Receive() {
			break
		}
		if err == nil {
			err = stream.Err()
		}
		if connect.CodeOf(err) != connect.CodeNotFound || time.Now().After(deadline) {
			t.Fatalf("no event from the resolver process: %v", err)
		}
	}
	if ev := stream.Msg().Event; string(ev.Key) != "k" || ev.Version != resp.Msg.Result.Version {
		t.Fatalf("event %+v, want version %d", ev, resp.Msg.Result.Version)
	}
	px.terminate(t)
	res.terminate(t)
}
