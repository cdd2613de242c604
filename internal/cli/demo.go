package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/demo"
	"github.com/wail-cdc/wail/internal/server"
)

type demoFlags struct {
	duration time.Duration
	rate     int
	keys     int
	dataDir  string
	listen   string
	noSync   bool
}

func newDemoCmd(g *globals) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run an in-process server with a synthetic order workload and a live display",
		Long: "Start a wail server in-process on a throwaway data directory, create the table\n" +
			"orders, write synthetic orders at --rate and follow the change events: once a\n" +
			"second it prints writes/s, events/s, resolver lag and write-to-event latency.\n" +
			"Ctrl-C (or --duration) stops the writers and prints a summary.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.rate <= 0 || f.keys <= 0 || f.duration < 0 {
				return usageErrorf("--rate and --keys must be positive, --duration not negative")
			}
			return runDemo(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", 0, "how long to write (0: until Ctrl-C)")
	fl.IntVar(&f.rate, "rate", 2000, "target mutations per second")
	fl.IntVar(&f.keys, "keys", 1000, "about how many orders are live at a time")
	fl.StringVar(&f.dataDir, "data-dir", "", "data directory (default: a temporary directory, removed afterwards)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:0", "listen address of the in-process server")
	fl.BoolVar(&f.noSync, "no-sync", false, "skip fsync in the log and store (faster, not durable)")
	return cmd
}

// runDemo starts the server, runs the workload and stops the server.
func runDemo(ctx context.Context, g *globals, f demoFlags) (err error) {
	dir, cleanup, err := demoDataDir(f.dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.ShutdownTimeout = dir, f.listen, 5*time.Second
	cfg.Log.NoSync, cfg.Store.NoSync = f.noSync, f.noSync
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	server.TuneMemory(cfg.Memory, g.memoryEnv())
	srv, err := server.New(cfg, logger)
	if err != nil {
		return err
	}
	addr, stop, err := startServer(ctx, srv)
	if err != nil || addr == "" {
		return err
	}
	defer func() { err = errors.Join(err, stop()) }()
	cl, err := newClients(client.Options{Addr: "http://" + addr})
	if err != nil {
		return err
	}
	if err := createDemoTable(ctx, cl); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wail demo: server at http://%s, data dir %s, table orders\n", addr, dir)
	fmt.Fprintf(g.stdout, "wail demo: console at http://%s/console/ (live charts, event tail, dead letters)\n", addr)
	_, err = demo.Run(ctx, demo.Config{
		Producer: cl.producer, Admin: cl.admin, Events: cl.events, Out: g.stdout,
		Table: "orders", Duration: f.duration, Rate: f.rate, Keys: f.keys, Terminal: isTerminal(g.stdout),
	})
	return err
}

// demoDataDir returns dir, or a new temporary directory that cleanup
// removes.
func demoDataDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "wail-demo-*")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { _ = os.RemoveAll(tmp) }, nil
}

// startServer runs srv until stop is called and returns the address to
// dial. When ctx ends before the server is ready, it returns an empty
// address and no error.
func startServer(ctx context.Context, srv *server.Server) (addr string, stop func() error, err error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, func(a string) { ready <- a }) }()
	stop = func() error {
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("server shutdown: %w", err)
		}
		return nil
	}
	select {
	case a := <-ready:
		return dialAddr(a), stop, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("server stopped before it was ready")
		}
		return "", nil, err
	case <-ctx.Done():
		return "", nil, stop()
	}
}

func createDemoTable(ctx context.Context, cl *clients) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cl.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: "orders", FailureMode: wailv1.FailureMode_FAILURE_MODE_TRANSACTIONAL}))
	if err != nil && connect.CodeOf(err) != connect.CodeAlreadyExists { // a reused --data-dir may hold another one
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("create table orders: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
