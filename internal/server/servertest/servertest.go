// Package servertest runs a real wail server in-process on a temporary
// data dir, for tests of clients (the CLI, the demo).
package servertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store"
)

// Start runs a server on 127.0.0.1 with fsync off and returns its URL
// (https with security.tls); it
// shuts down cleanly when the test ends. mutate may adjust the config.
func Start(t testing.TB, mutate func(*config.Config)) string {
	t.Helper()
	_, url := StartServer(t, mutate)
	return url
}

// StartServer is Start that also returns the server, for tests that reach
// its log or store directly (e.g. to lose events on purpose).
func StartServer(t testing.TB, mutate func(*config.Config)) (*server.Server, string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.NoSync = true
	cfg.Store.NoSync = true
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server shutdown: %v", err)
			}
		})
		if cfg.Security.TLS.Enabled() {
			return srv, "https://" + a
		}
		return srv, "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("server: %v", err)
		return nil, ""
	}
}

// Lose writes a key's state to the server's store behind the proxy's back,
// at a version above every one stamped so far: no intent is logged, so no
// event will come for it (what reconcile and redrive repair). It returns
// the version.
func Lose(t testing.TB, srv *server.Server, table, key, value string, deleted bool) uint64 {
	t.Helper()
	ctx := context.Background()
	st := srv.Store()
	row, _, err := st.Get(ctx, table, []byte(key), store.Level(len(st.Levels())-1))
	if err != nil {
		t.Fatal(err)
	}
	v := max(hlc.At(time.Now()), row.Version+1)
	m := store.Mutation{Key: []byte(key), Value: []byte(value), Version: v, Delete: deleted}
	out, err := st.Apply(ctx, table, []store.Mutation{m})
	if err != nil || !out[0].Applied {
		t.Fatalf("lose %s/%s at version %d: %v %+v", table, key, v, err, out)
	}
	return v
}

// DeadLetters writes dead letters to a table's dead-letter topic (creating
// it if needed), as a resolver that gave up would, and returns their
// offsets.
func DeadLetters(t testing.TB, srv *server.Server, table string, letters ...*wailv1.DeadLetter) []int64 {
	t.Helper()
	ctx := context.Background()
	log := srv.Log()
	if err := log.CreateTopic(ctx, dlq.Topic(table), dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*intentlog.Record, len(letters))
	for i, l := range letters {
		rec, err := dlq.LetterRecord(l)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec
	}
	if err := log.Append(ctx, dlq.Topic(table), recs); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, len(recs))
	for i, rec := range recs {
		offs[i] = rec.Offset
	}
	return offs
}
