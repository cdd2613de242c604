package e2etest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestCatalogAcrossProcessesPostgres: two `wail serve` processes share a
// PostgreSQL store. Concurrent creates of one name with different
// definitions, through both: one definition wins, every create that
// succeeds was answered with it, the others are told which it is, and
// after a restart both processes serve exactly the saved definition. An
// alter and a drop through one process are seen by the other.
func TestCatalogAcrossProcessesPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	bin := buildWail(t)
	cfgFile := filepath.Join(t.TempDir(), "wail.yaml")
	if err := os.WriteFile(cfgFile, []byte("catalog_refresh: 100ms\nlog:\n  no_sync: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	startBoth := func() []*child {
		var cs []*child
		for i, dir := range dirs { // proxies sharing a store need their own ids
			cs = append(cs, startWail(t, bin, "serve", "--config", cfgFile, "--data-dir", dir, "--store", "postgres", "--dsn", dsn,
				"--proxy-id", strconv.Itoa(i+1)))
		}
		return cs
	}
	admin := func(c *child) wailv1connect.AdminServiceClient {
		return wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+c.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	procs := startBoth()

	won := map[string]*wailv1.Table{}
	for round := range 4 {
		name := fmt.Sprintf("race%d", round)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ok      []*wailv1.Table
			created int
			refused []error
		)
		for i := range 12 {
			wg.Go(func() {
				resp, err := admin(procs[i%2]).CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: name,
					FailureMode: wailv1.FailureMode(1 + i%2), VisibilityWindowMs: int64(1000 + 100*(i%3)), Partitions: 2}))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok = append(ok, resp.Msg.Table)
					if resp.Msg.Created {
						created++
					}
				case connect.CodeOf(err) == connect.CodeAlreadyExists:
					refused = append(refused, err)
				default:
					t.Errorf("%s: create: %v", name, err)
				}
			})
		}
		wg.Wait()
		if created != 1 || len(ok) == 0 {
			t.Fatalf("%s: %d creates said created (%d succeeded), want 1", name, created, len(ok))
		}
		for _, tb := range ok[1:] {
			if !proto.Equal(tb, ok[0]) {
				t.Errorf("%s: two definitions answered: %v and %v", name, ok[0], tb)
			}
		}
		window := fmt.Sprintf("window %s,", time.Duration(ok[0].VisibilityWindowMs)*time.Millisecond)
		for _, err := range refused {
			if !strings.Contains(err.Error(), window) {
				t.Errorf("%s: %q does not name the saved definition (%s)", name, err, window)
			}
		}
		won[name] = ok[0]
	}

	check := func(when string) {
		t.Helper()
		for i, c := range procs {
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := admin(c).ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]*wailv1.Table{}
				for _, tb := range resp.Msg.Tables {
					got[tb.Name] = tb
				}
				diff := ""
				for name, want := range won {
					if !proto.Equal(got[name], want) {
						diff += fmt.Sprintf("\n%s: serves %v, saved %v", name, got[name], want)
					}
				}
				if len(got) != len(won) {
					diff += fmt.Sprintf("\nserves %d tables, want %d", len(got), len(won))
				}
				if diff == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: process %d:%s", when, i, diff)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	check("after the race")

	win := int64(2500)
	alt, err := admin(procs[0]).AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "race0", VisibilityWindowMs: &win}))
	if err != nil {
		t.Fatal(err)
	}
	won["race0"] = alt.Msg.Table
	if _, err := admin(procs[1]).DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "race1"})); err != nil {
		t.Fatal(err)
	}
	delete(won, "race1")
	check("after an alter and a drop")
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+procs[0].addr)
	if _, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "race1", Key: []byte("k"), Value: []byte("v")})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a write to a table dropped through the other process: %v", err)
	}

	for _, c := range procs {
		c.terminate(t)
	}
	procs = startBoth()
	check("after a restart")
	for _, c := range procs {
		c.terminate(t)
	}
}
