package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// TestClockBehindIsReported: a write superseded by a version from a clock
// 5 s ahead (another proxy's) makes the proxy report its clock behind.
func TestClockBehindIsReported(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	// Create the table, then write a row stamped 5 s ahead by proxy 9,
	// as a proxy with a fast clock would.
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(string) { cancel() }) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := pebble.Open(filepath.Join(cfg.DataDir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ahead := hlc.At(time.Now().Add(5*time.Second)) | 9
	if _, err := st.Apply(context.Background(), "t", []store.Mutation{{Key: []byte("k"), Value: []byte("fast"), Version: ahead}}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	c := start(t, func(c *config.Config) { *c = cfg; c.Listen = "127.0.0.1:0" })
	put, err := c.producer.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("slow")}))
	if err != nil || !put.Msg.Result.Superseded {
		t.Fatalf("put %v %+v, want superseded", err, put)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status, body := healthz(t, c.url)
		if status == http.StatusOK && strings.Contains(body, "degraded proxy/clock: versions observed ran 4.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz %d %q", status, body)
		}
	}
	if v := metric(t, c.url, "wail_proxy_clock_behind_total"); v < 1 {
		t.Fatalf("wail_proxy_clock_behind_total = %v", v)
	}
}
