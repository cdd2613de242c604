package e2etest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestDropOnKafkaProcesses: a table dropped through a `wail proxy` process
// while a `wail resolve` process resolves it (Kafka log and bus, PostgreSQL
// store): the drop waits for the resolver's offsets, deletes the topics, the
// resolver process lets the table's partitions go, and the table created
// again (with another partition count) is written and resolved by the same
// processes. Before the processes forgot the deleted topics, the resolver's
// Kafka clients held the old topic ids and partition counts and its
// transactions aborted forever.
func TestDropOnKafkaProcesses(t *testing.T) {
	bin, common, group := dropSetup(t)
	res := startWail(t, bin, append([]string{"resolve", "--data-dir", t.TempDir(), "--resolver-id", group}, common...)...)
	px := startWail(t, bin, append([]string{"proxy", "--data-dir", t.TempDir(), "--proxy-id", "3"}, common...)...)
	dropAndCreateAgain(t, px.addr, res.addr)
	px.terminate(t)
	res.terminate(t)
}

// TestDropOnKafkaServe: the same in one `wail serve` process, which drops
// the table under its own resolver.
func TestDropOnKafkaServe(t *testing.T) {
	bin, common, group := dropSetup(t)
	srv := startWail(t, bin, append([]string{"serve", "--data-dir", t.TempDir(), "--resolver-id", group}, common...)...)
	dropAndCreateAgain(t, srv.addr, srv.addr)
	srv.terminate(t)
}

// dropSetup builds wail and returns the flags of a process on Kafka and a
// fresh PostgreSQL schema, with its own resolver group.
func dropSetup(t *testing.T) (bin string, common []string, group string) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	brokers := kafkaBrokers(t)
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	bin = buildWail(t)
	cfgFile := filepath.Join(t.TempDir(), "wail.yaml")
	group = sqltest.Name("drop_group_") // its own consumer group on the shared broker
	if err := os.WriteFile(cfgFile, []byte("catalog_refresh: 200ms\nresolver:\n  group: "+group+"\n  commit_interval: 50ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, []string{"--config", cfgFile, "--store", "postgres", "--dsn", dsn, "--log", "kafka", "--brokers", strings.Join(brokers, ",")}, group
}

// dropAndCreateAgain writes to a new table through the proxy at pxAddr
// and sees its event at the resolver at resAddr, drops the table, checks
// that its topics are gone, creates it again with more partitions, and
// writes and sees an event again.
func dropAndCreateAgain(t *testing.T, pxAddr, resAddr string) {
	t.Helper()
	brokers := kafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	table := sqltest.Name("drop_")
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+pxAddr)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+pxAddr)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, "http://"+resAddr)

	// writeAndSee writes k and waits for its event on the resolver process.
	writeAndSee := func(what string) {
		t.Helper()
		resp, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: []byte("k"), Value: []byte(what)}))
		if err != nil {
			t.Fatalf("%s: put: %v", what, err)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			stream, err := events.Subscribe(sctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: "beginning"}))
			if err == nil {
				for stream.Receive() {
					if stream.Msg().Event.Version == resp.Msg.Result.Version {
						scancel()
						return
					}
				}
				err = stream.Err()
			}
			scancel()
			if time.Now().After(deadline) {
				t.Fatalf("%s: no event from the resolver process: %v", what, err)
			}
		}
	}

	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: table, Partitions: 2, VisibilityWindowMs: 1000})); err != nil {
		t.Fatal(err)
	}
	writeAndSee("before the drop")
	// The resolver commits with its transactions; the drop refuses until
	// then, so retry while it says so.
	for {
		_, err := admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: table}))
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || ctx.Err() != nil {
			t.Fatalf("drop: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, err := kafka.Open(ctx, kafka.Options{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for _, topic := range []string{intent.Topic(table), eventbus.Topic(table)} {
		if _, err := log.Partitions(ctx, topic); !errors.Is(err, intentlog.ErrUnknownTopic) {
			t.Errorf("topic %s after the drop: %v, want it deleted", topic, err)
		}
	}
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: []byte("k"), Value: []byte("x")})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a write to the dropped table: %v, want not_found", err)
	}

	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: table, Partitions: 3, VisibilityWindowMs: 1000})); err != nil {
		t.Fatalf("create again: %v", err)
	}
	writeAndSee("after the drop")
}
