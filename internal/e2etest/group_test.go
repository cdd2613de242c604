package e2etest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestResolverGroupProcesses runs one `wail proxy` and two `wail resolve`
// processes of one consumer group on PostgreSQL and Kafka while writers
// write: the second resolver joins (a rebalance), the first leaves on
// SIGTERM (drain, commit, leave) and comes back, then the second is killed
// with SIGKILL mid-stream and restarted with the same instance id (which
// fences it). Once writes stop, the events on Kafka must keep the
// invariants: nothing acknowledged lost, nothing duplicated, per key
// strictly increasing versions, the last event equal to the store.
func TestResolverGroupProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	brokers := kafkaBrokers(t)
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	bin := buildWail(t)
	tbl := sqltest.Name("grp_")
	group := "wail-resolver." + tbl
	cfgFile := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := fmt.Sprintf("resolver:\n  group: %s\n  commit_interval: 50ms\n", group)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", cfgFile, "--store", "postgres", "--dsn", dsn, "--log", "kafka", "--brokers", strings.Join(brokers, ",")}
	resolve := func(id string) *child {
		return startWail(t, bin, append([]string{"resolve", "--data-dir", t.TempDir(), "--resolver-id", id}, common...)...)
	}
	px := startWail(t, bin, append([]string{"proxy", "--data-dir", t.TempDir(), "--proxy-id", "1"}, common...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	url := "http://" + px.addr
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: tbl, Partitions: 4, VisibilityWindowMs: 2000,
	})); err != nil {
		t.Fatal(err)
	}
	a := resolve("a")
	w := &remoteWriters{table: tbl}
	stopWriters := w.start(ctx, url, 3)
	step := func(what string) {
		time.Sleep(1500 * time.Millisecond)
		w.progress(t, "before: "+what)
		t.Logf("%s (%d writes acknowledged)", what, w.acked.Load())
	}
	step("second resolver joins")
	b := resolve("b")
	step("first resolver leaves on SIGTERM")
	a.terminate(t)
	step("first resolver comes back")
	a = resolve("a")
	step("second resolver killed with SIGKILL and restarted")
	b.kill(t)
	b = resolve("b")
	step("writes stop")
	stopWriters()

	log, err := kafka.Open(ctx, kafka.Options{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	tb := catalog.Table{Name: tbl, Partitions: 4}
	waitResolved(t, ctx, log, group, tb)
	a.terminate(t)
	b.terminate(t)
	px.terminate(t)
	st, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, writes := w.keys()
	t.Logf("%d writes acknowledged, %d attempted", w.acked.Load(), len(w.attempts))
	Check(t, writes, readEvents(t, ctx, log, tb), w.oracle(), finalState(t, ctx, st, tbl, keys), nil)
}
