package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// TestClockAfterRestartPastEveryIntent: the proxy's last run stamped
// version `ahead` (its clock was 5 s ahead, then set back while down),
// and after it records with older versions were logged: redrives (their
// stored versions) or aborts, fewer or more than the clock reads at start
// (observeWindow). At restart the clock still stamps above `ahead`. (It
// observed only the partition's last intent, later its last 1,024: the
// next write of the key got a lower version and was superseded by the
// proxy's own earlier write.)
func TestClockAfterRestartPastEveryIntent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after int // records logged after the write, with older versions
		op    intent.Op
		floor uint64
	}{
		{"one redrive", 1, intent.Upsert, intent.NoEventFloor},
		{"a redrive longer than the window", 1100, intent.Upsert, intent.NoEventFloor},
		{"aborts more than the window", 1100, intent.Abort, 0},
	} {
		t.Run(tc.name, func(t *testing.T) { clockAfterRestart(t, tc.after, tc.op, tc.floor) })
	}
}

func clockAfterRestart(t *testing.T, after int, op intent.Op, floor uint64) {
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
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
	bg := context.Background()
	ahead := hlc.At(time.Now().Add(5*time.Second)) | uint64(cfg.ProxyID)
	old := hlc.At(time.Now().Add(-time.Hour)) | uint64(cfg.ProxyID)
	// The previous run: its write of k at `ahead` (intent, then store).
	lg, err := embedded.Open(filepath.Join(cfg.DataDir, "log"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(in intent.Intent) *intentlog.Record {
		b, err := in.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return &intentlog.Record{Key: in.Key, Value: b}
	}
	now := time.Now()
	recs := []*intentlog.Record{
		rec(intent.Intent{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: ahead, ID: "w", ProxyID: cfg.ProxyID, CreatedAt: now}),
	}
	// then redrives or aborts of other keys, with older versions
	for i := range after {
		recs = append(recs, rec(intent.Intent{Table: "t", Key: fmt.Appendf(nil, "j%d", i), Op: op, Version: old + uint64(i)<<10,
			ID: fmt.Sprintf("later-%d", i), ProxyID: cfg.ProxyID, CreatedAt: now, PublishedFloor: floor}))
	}
	if err := lg.Append(bg, intent.Topic("t"), recs); err != nil {
		t.Fatal(err)
	}
	lg.Close()
	st, err := pebble.Open(filepath.Join(cfg.DataDir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(bg, "t", []store.Mutation{{Key: []byte("k"), Value: []byte("before"), Version: ahead}}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	c := start(t, func(c *config.Config) { *c = cfg; c.Listen = "127.0.0.1:0" })
	put, err := c.producer.Put(bg, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("after")}))
	if err != nil {
		t.Fatal(err)
	}
	if r := put.Msg.Result; r.Version <= ahead || r.Superseded {
		t.Fatalf("after restart the proxy stamped v%d (%s), not above its own earlier v%d (%s); superseded=%v",
			r.Version, hlc.Time(r.Version).Format(time.RFC3339Nano), ahead, hlc.Time(ahead).Format(time.RFC3339Nano), r.Superseded)
	}
}
