package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"google.golang.org/protobuf/proto"
)

// stopRun stops a server of runServer and waits for Run to return.
func stopRun(t *testing.T, r *running) {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("server shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop")
	}
}

// TestStartWithInterruptedDrop: a table of the configuration whose drop
// stopped half way (the process died between marking it dropping or
// deleting and removing its entry). Before, the next start failed with
// "table t is being dropped ... finish it with `wail table drop t
// --force`", which needs a running server: with one process (Pebble) the
// operator could neither start nor finish the drop without editing the
// configuration. Now the start serves the other tables, raises the health
// condition catalog/t saying what to run, the drop finishes through the
// API, and the table is created again from the configuration at the next
// start.
func TestStartWithInterruptedDrop(t *testing.T) {
	t.Parallel()
	for _, state := range []catalog.State{catalog.Dropping, catalog.Deleting} {
		t.Run(state.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cfg := testConfig(t)
			cfg.CatalogRefresh = 50 * time.Millisecond
			r := runServer(t, cfg, seams{})
			rows, err := r.srv.store.Tables(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var old []byte
			for _, row := range rows {
				if row.Name == "t" {
					old = row.Spec
				}
			}
			tb, err := catalog.Decode(old)
			if err != nil {
				t.Fatal(err)
			}
			tb.State = state
			spec, err := proto.MarshalOptions{Deterministic: true}.Marshal(tb.Proto())
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := r.srv.store.SwapTable(ctx, "t", old, spec); err != nil || !ok {
				t.Fatalf("marking the table %s: %v %v", state, ok, err)
			}
			stopRun(t, r)

			r = runServer(t, cfg, seams{})
			c, ok := condition(r.srv.health, "catalog/t")
			if !ok || !strings.Contains(c.Reason+" "+c.Action, "wail table drop t") {
				t.Errorf("health condition catalog/t: %+v %v, want it to say to run the drop", c, ok)
			}
			if _, err := r.put(ctx, "k", "v"); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("a write to a table being dropped: %v", err)
			}
			admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, r.url)
			if _, err := admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "t", Force: true})); err != nil {
				t.Fatalf("finishing the drop: %v", err)
			}
			if _, ok := condition(r.srv.health, "catalog/t"); ok {
				t.Error("the condition stayed after the drop finished")
			}
			stopRun(t, r)

			r = runServer(t, cfg, seams{})
			if _, err := r.put(ctx, "k", "v"); err != nil {
				t.Errorf("a write after the start that created the table again: %v", err)
			}
		})
	}
}
