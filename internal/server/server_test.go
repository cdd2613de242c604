package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

type clients struct {
	url      string
	producer wailv1connect.ProducerServiceClient
	admin    wailv1connect.AdminServiceClient
	events   wailv1connect.EventServiceClient
}

// start runs a server on a temp dir and returns clients; it stops with the test.
func start(t *testing.T, mutate func(*config.Config)) clients {
	t.Helper()
	url := servertest.Start(t, mutate)
	hc := http.DefaultClient
	return clients{
		url:      url,
		producer: wailv1connect.NewProducerServiceClient(hc, url),
		admin:    wailv1connect.NewAdminServiceClient(hc, url),
		events:   wailv1connect.NewEventServiceClient(hc, url),
	}
}

func TestPutThenEvent(t *testing.T) {
	t.Parallel()
	c := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders"})); err != nil {
		t.Fatal(err)
	}
	stream, err := c.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "orders", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	put, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("o-1"), Value: []byte(`{"s":"placed"}`)}))
	if err != nil {
		t.Fatal(err)
	}
	r := put.Msg.Result
	if !r.IntentLogged || !r.Stored || r.Version == 0 {
		t.Fatalf("put result %+v", r)
	}
	if !stream.Receive() {
		t.Fatalf("no event: %v", stream.Err())
	}
	ev := stream.Msg().Event
	if string(ev.Key) != "o-1" || ev.Version != r.Version || string(ev.Value) != `{"s":"placed"}` || ev.Op != wailv1.Op_OP_UPSERT {
		t.Fatalf("event %+v, want version %d", ev, r.Version)
	}
	got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte("o-1")}))
	if err != nil || !got.Msg.Found || got.Msg.Version != r.Version {
		t.Fatalf("get: %v %+v", err, got)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Limits.MaxKeyBytes = 8
		cfg.Limits.MaxValueBytes = 16
		cfg.Tables = []config.Table{{Name: "t"}}
	})
	ctx := context.Background()
	cases := []struct {
		name string
		req  *wailv1.PutRequest
		code connect.Code
	}{
		{"unknown table", &wailv1.PutRequest{Table: "nope", Key: []byte("k")}, connect.CodeNotFound},
		{"empty key", &wailv1.PutRequest{Table: "t"}, connect.CodeInvalidArgument},
		{"key over limit", &wailv1.PutRequest{Table: "t", Key: []byte("123456789")}, connect.CodeInvalidArgument},
		{"value over limit", &wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: make([]byte, 17)}, connect.CodeInvalidArgument},
	}
	for _, tc := range cases {
		_, err := c.producer.Put(ctx, connect.NewRequest(tc.req))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != tc.code {
			t.Errorf("%s: got %v, want code %v", tc.name, err, tc.code)
		}
	}
}

// TestGRPCOverH2C speaks real gRPC (HTTP/2 without TLS) to the server.
func TestGRPCOverH2C(t *testing.T) {
	t.Parallel()
	url := start(t, func(cfg *config.Config) { cfg.Tables = []config.Table{{Name: "t"}} }).url
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	pc := wailv1connect.NewProducerServiceClient(hc, url, connect.WithGRPC())
	resp, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Msg.Result.Stored {
		t.Fatalf("result %+v", resp.Msg.Result)
	}
	_, err = pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "nope", Key: []byte("k")}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("unknown table over gRPC: %v", err)
	}
}

// TestMalformedBodies sends broken requests over plain HTTP: each gets
// invalid_argument and the server goes on serving.
func TestMalformedBodies(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.Tables = []config.Table{{Name: "t"}} })
	bodies := []string{`{"table":`, `{"table":"t","key":"not base64!"}`, `{"table":5}`, `[]`, "\x00\x01\x02"}
	for _, b := range bodies {
		resp, err := http.Post(c.url+"/wail.v1.ProducerService/Put", "application/json", strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_argument") {
			t.Errorf("body %q: status %d %s", b, resp.StatusCode, body)
		}
	}
	if _, err := c.producer.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k")})); err != nil {
		t.Fatalf("server stopped serving after bad input: %v", err)
	}
}

// TestNewLogOnAnExistingStore restarts a server whose store knows a table
// but whose log is new (as when a proxy joins a shared database): the
// table's topics are made at start and writes work.
func TestNewLogOnAnExistingStore(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Tables = []config.Table{{Name: "t"}}
	runOnce := func() {
		srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		addr := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx, func(a string) { addr <- a }) }()
		pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+<-addr)
		if _, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k")})); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	runOnce()
	cfg.Tables = nil // the table is only in the store's catalog now
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "log")); err != nil {
		t.Fatal(err)
	}
	runOnce()
}

// TestTableRetryBoundsAndDeadLetterTopic: a created table takes its retry
// bounds from the request or from table_defaults, and gets its
// dead-letter topic (one partition) with its other topics.
func TestTableRetryBoundsAndDeadLetterTopic(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, func(c *config.Config) { c.Defaults.MaxAttempts = 7 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	resp, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders", MaxRetryTimeMs: 30000}))
	if err != nil {
		t.Fatal(err)
	}
	if tb := resp.Msg.Table; tb.MaxAttempts != 7 || tb.MaxRetryTimeMs != 30000 {
		t.Fatalf("table %v: want max_attempts 7 (table_defaults) and max_retry_time_ms 30000", tb)
	}
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "bad", MaxRetryTimeMs: 5})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("max_retry_time_ms 5: %v, want invalid_argument", err)
	}
	if n, err := srv.Log().Partitions(ctx, dlq.Topic("orders")); err != nil || n != dlq.Partitions {
		t.Fatalf("dead-letter topic: %d partitions, %v", n, err)
	}
}
