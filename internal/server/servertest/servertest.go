// Package servertest runs a real wail server in-process on a temporary
// data dir, for tests of clients (the CLI, the demo).
package servertest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// Start runs a server on 127.0.0.1 with fsync off and returns its URL; it
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
		return srv, "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("server: %v", err)
		return nil, ""
	}
}
