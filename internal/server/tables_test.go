package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// running is a server a test stops (and starts again on its data dir).
type running struct {
	clients
	cancel context.CancelFunc
	done   chan error
}

func testConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.CatalogRefresh = 50 * time.Millisecond
	cfg.Resolver.CommitInterval = 10 * time.Millisecond
	return cfg
}

func runServer(t *testing.T, cfg config.Config) *running {
	t.Helper()
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		url := "http://" + a
		r.clients = clients{url: url, producer: wailv1connect.NewProducerServiceClient(http.DefaultClient, url),
			admin: wailv1connect.NewAdminServiceClient(http.DefaultClient, url), events: wailv1connect.NewEventServiceClient(http.DefaultClient, url)}
	case err := <-r.done:
		t.Fatalf("server: %v", err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		t.Errorf("server shutdown: %v", err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestCreateTableRace: concurrent CreateTable calls of one name with
// different definitions all got 200 and a restart served a different
// definition than the one answered. Now one wins, the others are told
// which, and a restart serves exactly the saved one.
func TestCreateTableRace(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	cfg := testConfig(t.TempDir())
	srv := runServer(t, cfg)
	defs := map[string]*wailv1.Table{}
	for round := range 8 {
		name := fmt.Sprintf("race%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []*wailv1.Table
		for i := range 12 {
			wg.Go(func() {
				resp, err := srv.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: name,
					FailureMode: wailv1.FailureMode(1 + i%2), VisibilityWindowMs: int64(1000 + i%3), Partitions: 2}))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, resp.Msg.Table)
				case connect.CodeOf(err) != connect.CodeAlreadyExists:
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		for _, w := range won[1:] {
			if w.FailureMode != won[0].FailureMode || w.VisibilityWindowMs != won[0].VisibilityWindowMs {
				t.Errorf("%s: two definitions were answered as created: %v and %v", name, won[0], w)
			}
		}
		defs[name] = won[0]
	}
	srv.stop(t)
	srv = runServer(t, cfg)
	resp, err := srv.admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range resp.Msg.Tables {
		want := defs[got.Name]
		if got.FailureMode != want.FailureMode || got.VisibilityWindowMs != want.VisibilityWindowMs || got.CreatedAtUs != want.CreatedAtUs {
			t.Errorf("after restart %s is %v; the create answered %v", got.Name, got, want)
		}
	}
}

// TestAlterAndDrop: alter changes what it may and the resolver uses it; a
// drop refuses while intents are unresolved, removes rows, topics and
// offsets, and the table can be created again, empty.
func TestAlterAndDrop(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	cfg := testConfig(t.TempDir())
	cfg.Resolver.Enabled = false // nothing resolves until the test starts a resolver: intents stay unresolved
	srv := runServer(t, cfg)
	if _, err := srv.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 2, VisibilityWindowMs: 200})); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, err := srv.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(k), Value: []byte("v")})); err != nil {
			t.Fatal(err)
		}
	}

	win, mode := int64(300), wailv1.FailureMode_FAILURE_MODE_INDEPENDENT
	alt, err := srv.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "t", VisibilityWindowMs: &win, FailureMode: &mode}))
	if err != nil || !alt.Msg.Changed || alt.Msg.Table.VisibilityWindowMs != 300 || alt.Msg.Table.FailureMode != mode || alt.Msg.Table.Partitions != 2 {
		t.Fatalf("alter: %v %v", alt, err)
	}
	bad := int64(288230376151721504) // times 1e6 wraps around to 9760 ms
	_, err = srv.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "t", VisibilityWindowMs: &bad}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "visibility_window_ms 288230376151721504 out of range") {
		t.Errorf("alter to an overflowing window: %v", err)
	}
	none := wailv1.FailureMode_FAILURE_MODE_UNSPECIFIED
	if _, err := srv.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "t", FailureMode: &none})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("alter to no failure mode: %v", err)
	}
	if _, err := srv.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "nope"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("alter of an unknown table: %v", err)
	}

	_, err = srv.admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "t"}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "3 unresolved intents") {
		t.Fatalf("drop with unresolved intents: %v", err)
	}
	if _, err := srv.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("d"), Value: []byte("v")})); err != nil {
		t.Fatalf("a refused drop stopped writes: %v", err)
	}

	// With a resolver, every intent resolves and the drop goes through.
	srv.stop(t)
	cfg.Resolver.Enabled = true
	srv = runServer(t, cfg)
	waitLag(ctx, t, srv, "t", 0)
	if _, err := srv.admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "t"})); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if _, err := srv.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("a")})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("get from a dropped table: %v", err)
	}
	if _, err := srv.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: "t"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("describe of a dropped table: %v", err)
	}

	// Created again: no rows, no events, no offsets of the old one.
	if _, err := srv.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 3})); err != nil {
		t.Fatalf("create after drop: %v", err)
	}
	got, err := srv.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("a")}))
	if err != nil || got.Msg.Found {
		t.Errorf("a row of the dropped table: %v %v", got, err)
	}
	d, err := srv.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: "t"}))
	if err != nil {
		t.Fatal(err)
	}
	for p := range 3 {
		if d.Msg.IntentEndOffsets[p] != 0 || d.Msg.EventEndOffsets[p] != 0 || d.Msg.CommittedOffsets[p] != 0 {
			t.Errorf("partition %d of the re-created table: %v", p, d.Msg)
		}
	}
	put, err := srv.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("a"), Value: []byte("new")}))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := srv.events.Subscribe(sctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || stream.Msg().Event.Version != put.Msg.Result.Version {
		t.Fatalf("the first event of the re-created table: %v %v", stream.Msg(), stream.Err())
	}

	// Forced: unresolved intents are no obstacle.
	srv.stop(t)
	cfg.Resolver.Enabled = false
	srv = runServer(t, cfg)
	if _, err := srv.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("b"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "t", Force: true})); err != nil {
		t.Fatalf("forced drop: %v", err)
	}
}

// waitLag waits until the table's resolver lag is want.
func waitLag(ctx context.Context, t *testing.T, srv *running, table string, want int64) {
	t.Helper()
	for {
		d, err := srv.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: table}))
		if err != nil {
			t.Fatal(err)
		}
		var lag int64
		for p := range d.Msg.IntentEndOffsets {
			lag += d.Msg.IntentEndOffsets[p] - d.Msg.CommittedOffsets[p]
		}
		if lag == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lag of %s stays %d, want %d", table, lag, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPartitionBudgets: a table over the per-table budget is
// InvalidArgument, tables over the total are ResourceExhausted, both
// naming the limit, and the server keeps serving the others.
func TestPartitionBudgets(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	c := start(t, func(cfg *config.Config) {
		cfg.Limits.MaxTablePartitions, cfg.Limits.MaxPartitions, cfg.Defaults.Partitions = 4, 6, 2
	})
	_, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "big", Partitions: 5}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "limits.max_table_partitions") {
		t.Errorf("5 partitions over a per-table budget of 4: %v", err)
	}
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "a", Partitions: 4})); err != nil {
		t.Fatal(err)
	}
	_, err = c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "b", Partitions: 3}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "limits.max_partitions 6") {
		t.Errorf("7 partitions over a budget of 6: %v", err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "a", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Errorf("the server stopped serving after the budget was hit: %v", err)
	}
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "b", Partitions: 2})); err != nil {
		t.Errorf("a table that fits: %v", err)
	}
}

// TestConfigTables: a YAML table whose alterable settings changed is
// altered at start; one whose partitions changed refuses to start, saying
// how to proceed; settings the YAML leaves out are not compared.
func TestConfigTables(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	cfg := testConfig(t.TempDir())
	cfg.Tables = []config.Table{{Name: "t", VisibilityWindow: time.Second, Partitions: 2}}
	srv := runServer(t, cfg)
	srv.stop(t)

	cfg.Tables[0].VisibilityWindow = 3 * time.Second
	srv = runServer(t, cfg)
	d, err := srv.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: "t"}))
	if err != nil || d.Msg.Table.VisibilityWindowMs != 3000 {
		t.Fatalf("after editing the window: %v %v", d, err)
	}
	srv.stop(t)

	cfg.Tables = []config.Table{{Name: "t"}}
	srv = runServer(t, cfg)
	d, err = srv.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: "t"}))
	if err != nil || d.Msg.Table.VisibilityWindowMs != 3000 || d.Msg.Table.Partitions != 2 {
		t.Fatalf("a YAML table that names nothing changed the table: %v %v", d, err)
	}
	srv.stop(t)

	cfg.Tables = []config.Table{{Name: "t", Partitions: 4}}
	_, err = server.New(cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "the configuration says 4 partitions, the saved table has 2") ||
		!strings.Contains(err.Error(), "wail table drop t") {
		t.Fatalf("start with other partitions: %v", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
