package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/server"
)

// The runbook of docs/operations.md played for real: a broken data dir is
// made, the command the page names is run, and the situation must clear.

// runLoggedServer runs a server on dataDir whose log goes to logs, until
// stop or the test's end.
func runLoggedServer(t *testing.T, dataDir string, logs *logbuf.Buffer, mutate func(*config.Config)) (url string, stop func()) {
	t.Helper()
	srv, err := server.New(serverConfig(dataDir, mutate), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return serveUntilStop(t, srv)
}

// eventually waits up to 10 s for ok, polling.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startErr is the error of a server start on dataDir (nil: it started).
func startErr(ctx context.Context, dataDir string) error {
	srv, err := server.New(serverConfig(dataDir, nil), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	_, stop, err := startServer(ctx, srv)
	if err == nil {
		return stop()
	}
	return err
}

// serverConfig is the configuration of a test server on dataDir.
func serverConfig(dataDir string, mutate func(*config.Config)) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = dataDir, "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// TestRunbookLogRepairThenReconcile: intents damaged on disk before the
// resolver resolved them. The page says: start fails naming `wail log
// repair`; run it; at the next start the resolver writes a GAP letter and
// logs an error naming `wail table reconcile TABLE`; run it: it settles
// the GAP letter and the lost key gets its event.
func TestRunbookLogRepairThenReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	var logs logbuf.Buffer
	url, stop := runLoggedServer(t, data, &logs, func(cfg *config.Config) { cfg.Resolver.Enabled = false })
	if code, _, errOut := runCLI(ctx, url, "", "table", "create", "t", "--partitions", "1"); code != 0 {
		t.Fatal(errOut)
	}
	seg := filepath.Join(data, "log", "wail.intents.t", "0", "00000000000000000000.log")
	var sizes []int64
	for _, k := range []string{"a", "b", "c"} {
		if code, _, errOut := runCLI(ctx, url, "", "put", "t", k, "value-"+k); code != 0 {
			t.Fatalf("put %s: %s", k, errOut)
		}
		st, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, st.Size())
	}
	stop()
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, sizes[0]+30); err != nil { // the batch of "b"
		t.Fatal(err)
	}
	f.Close()

	err = startErr(ctx, data)
	if err == nil || !strings.Contains(err.Error(), "wail log repair") {
		t.Fatalf("start on the damaged log: %v; want an error naming wail log repair", err)
	}

	code, out, errOut := runCLI(ctx, "", "", "log", "repair", data)
	if code != 0 || !strings.Contains(out, "lost wail.intents.t/0 offsets [1, 2)") {
		t.Fatalf("log repair: code %d\n%s%s", code, out, errOut)
	}

	url, _ = runLoggedServer(t, data, &logs, nil)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "wail table reconcile t") {
		if time.Now().After(deadline) {
			t.Fatalf("no error naming `wail table reconcile t` in the log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	runSteps(t, url, []step{
		{args: []string{"dlq", "ls", "t"}, want: []string{"gap", "intents [1, 2)", "unsettled"}},
		{args: []string{"table", "reconcile", "t"}, want: []string{"scanned 3 keys: 1 behind (intents logged"}},
		{args: []string{"dlq", "ls", "t"}, want: []string{"no dead letters in table t"}},
		{args: []string{"tail", "t", "--from", "beginning"}, want: []string{"key=a ", "key=b ", "key=c "}, timeout: 3 * time.Second},
	})
}

// TestRunbookMissingSegment: the last segment of a table's intent
// partition deleted while wail was stopped, its intents unresolved. The
// page says: start fails naming the command that accepts the loss; run
// it, start wail, run `wail table reconcile TABLE`: the keys whose intents
// were lost get their events.
func TestRunbookMissingSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	var logs logbuf.Buffer
	url, stop := runLoggedServer(t, data, &logs, func(cfg *config.Config) {
		cfg.Resolver.Enabled = false
		cfg.Log.SegmentBytes = 1 << 20
		cfg.Limits.MaxKeyBytes = 65536 // intents carry keys, not values: large keys roll segments
	})
	if code, _, errOut := runCLI(ctx, url, "", "table", "create", "t", "--partitions", "1"); code != 0 {
		t.Fatal(errOut)
	}
	part := filepath.Join(data, "log", "wail.intents.t", "0")
	var keys []string
	for i := range 24 {
		big := make([]byte, 30000) // incompressible: 60 kB in hex
		rand.Read(big)
		k := fmt.Sprintf("k%02d-x%x", i, big) // the x: the tail's output checked shows runs of 12 digits or more as N
		keys = append(keys, k)
		if code, _, errOut := runCLI(ctx, url, "", "put", "t", k, "v"); code != 0 {
			t.Fatalf("put %s: %s", k[:3], errOut)
		}
	}
	stop()
	segs, err := filepath.Glob(filepath.Join(part, "*.log"))
	if err != nil || len(segs) < 2 {
		t.Fatalf("segments of %s: %v %v; want at least 2", part, segs, err)
	}
	if err := os.Remove(segs[len(segs)-1]); err != nil {
		t.Fatal(err)
	}

	err = startErr(ctx, data)
	if err == nil {
		t.Fatal("start with a segment missing: no error")
	}
	_, fix, _ := strings.Cut(err.Error(), "stop wail and run `")
	fix, _, ok := strings.Cut(fix, "`")
	if !ok || fix == "" {
		t.Fatalf("start with a segment missing: %v; want the command that accepts the loss", err)
	}
	if out, err := exec.Command("sh", "-c", fix).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", fix, err, out)
	}

	url, _ = runLoggedServer(t, data, &logs, func(cfg *config.Config) { cfg.Limits.MaxKeyBytes = 65536 })
	var want []string
	for _, k := range keys {
		want = append(want, "UPSERT key="+k[:5])
	}
	runSteps(t, url, []step{
		{args: []string{"table", "reconcile", "t"}, want: []string{"scanned 24 keys: "}},
		{args: []string{"table", "reconcile", "t"}, want: []string{"scanned 24 keys: 0 behind"}},
		{args: []string{"tail", "t", "--from", "beginning"}, want: want, timeout: 3 * time.Second},
	})
}

// TestRunbookTokensFileRemoved: the tokens file deleted while the server
// runs. The page says: every bearer token is refused and the server is
// unhealthy (tokens_file); `wail token create` new tokens: they work, and
// the condition clears when the file is read again.
func TestRunbookTokensFileRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, dir := t.TempDir(), t.TempDir()
	tokenFile := func(name string) string {
		t.Helper()
		code, out, errOut := runCLI(ctx, "", "", "token", "create", name, "--data-dir", data, "--grant", "admin:*", "--grant", "metrics")
		if code != 0 {
			t.Fatalf("token create %s: %s", name, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(lines[len(lines)-1]), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	alice := tokenFile("alice")
	var logs logbuf.Buffer
	url, _ := runLoggedServer(t, data, &logs, func(cfg *config.Config) {
		cfg.Security.Auth.Enabled = true
		cfg.Security.ReloadInterval = 20 * time.Millisecond
	})
	server := func(token string) string { // doctor's line of the server, and its exit code
		code, out, _ := runCLI(ctx, url, "", "doctor", "--data-dir", t.TempDir(), "--token-file", token)
		line, _, _ := strings.Cut(out[strings.Index(out, "server "):], "\n")
		return fmt.Sprintf("%s (exit %d)", line, code)
	}
	if got := server(alice); !strings.Contains(got, "server       ok at ") {
		t.Fatalf("doctor before: %s", got)
	}
	if err := os.Remove(filepath.Join(data, "tokens.json")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's token refused once the tokens file is removed", func() bool {
		code, _, errOut := runCLI(ctx, url, "", "table", "ls", "--token-file", alice)
		return code == 1 && strings.Contains(errOut, "unauthenticated")
	})
	if got := server(alice); !strings.Contains(got, "server       unhealthy at ") || !strings.HasSuffix(got, "(exit 1)") {
		t.Fatalf("doctor with the tokens file removed: %s", got)
	}
	bob := tokenFile("bob")
	eventually(t, "a token made after the removal accepted", func() bool {
		code, _, _ := runCLI(ctx, url, "", "table", "ls", "--token-file", bob)
		return code == 0
	})
	if got := server(bob); !strings.Contains(got, "server       ok at ") || !strings.HasSuffix(got, "(exit 0)") {
		t.Fatalf("doctor after wail token create: %s", got)
	}
	if !strings.Contains(logs.String(), "the tokens file is back") {
		t.Errorf("no `the tokens file is back` in the log:\n%s", logs.String())
	}
}

// TestRunbookStoreWithoutTables: the store removed while the log keeps
// a table's topics. The page says: the start is refused naming the
// tables; with the store the right one, remove their topic directories
// under <data_dir>/log and start.
func TestRunbookStoreWithoutTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	var logs logbuf.Buffer
	url, stop := runLoggedServer(t, data, &logs, nil)
	if code, _, errOut := runCLI(ctx, url, "", "table", "create", "t", "--partitions", "1"); code != 0 {
		t.Fatal(errOut)
	}
	stop()
	if err := os.RemoveAll(filepath.Join(data, "store")); err != nil {
		t.Fatal(err)
	}
	err := startErr(ctx, data)
	if err == nil || !strings.Contains(err.Error(), "the store holds no table, but this process's log holds topics made for tables: t (created ") {
		t.Fatalf("start with the store removed: %v", err)
	}
	for _, topic := range []string{"wail.intents.t", "wail.events.t", "wail.dlq.t"} {
		if err := os.RemoveAll(filepath.Join(data, "log", topic)); err != nil {
			t.Fatal(err)
		}
	}
	url, _ = runLoggedServer(t, data, &logs, nil)
	runSteps(t, url, []step{
		{args: []string{"table", "create", "t", "--partitions", "1"}},
		{args: []string{"put", "t", "k", "v"}},
		{args: []string{"tail", "t", "--from", "beginning"}, want: []string{"key=k "}, timeout: 3 * time.Second},
	})
}

// TestRunbookSinkReplay: the page's replay of a webhook sink: `wail sink
// pause`, `wail group reset T sink.N --to ...`, `wail sink resume`: the
// endpoint gets the events again. A reset of a sink that runs is refused
// (before, it answered the new positions and the sink's next commit
// overwrote them: nothing was replayed).
func TestRunbookSinkReplay(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		for _, k := range []string{"k1", "k2"} {
			got[k] += strings.Count(string(b), `"key":"`+base64.StdEncoding.EncodeToString([]byte(k))+`"`)
		}
		mu.Unlock()
	}))
	defer hook.Close()
	delivered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			ok := got["k1"] >= n && got["k2"] >= n
			g := fmt.Sprint(got)
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries %s; want each key %d times", g, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	url, _ := runServer(t, nil)
	runSteps(t, url, []step{
		{args: []string{"table", "create", "t", "--partitions", "1"}},
		{args: []string{"sink", "create", "t", "s", "--webhook", hook.URL, "--start", "beginning"}},
		{args: []string{"put", "t", "k1", "v"}},
		{args: []string{"put", "t", "k2", "v"}},
	})
	delivered(1)
	runSteps(t, url, []step{
		// A running sink would overwrite the reset with its next commit.
		{args: []string{"group", "reset", "t", "sink.s", "--to", "beginning"}, wantCode: 1,
			wantErr: "failed_precondition: the group has live members: group sink.s is webhook sink s's, which runs: pause it first (`wail sink pause t s`)"},
		{args: []string{"sink", "pause", "t", "s"}},
		{args: []string{"group", "reset", "t", "sink.s", "--to", "beginning"}},
		{args: []string{"sink", "resume", "t", "s"}},
	})
	delivered(2)
}

// TestRunbookDamagedCatalogEntry: a table whose catalog entry does not
// decode. The page says: the process serves the others, /healthz says
// catalog/<table> degraded, `wail table drop t --force` removes it (a
// drop without --force is refused), and doctor's catalog check passes again.
func TestRunbookDamagedCatalogEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	var logs logbuf.Buffer
	url, stop := runLoggedServer(t, data, &logs, nil)
	runSteps(t, url, []step{
		{args: []string{"table", "create", "x", "--partitions", "1"}},
		{args: []string{"table", "create", "y", "--partitions", "1"}},
	})
	stop()
	st, err := server.OpenStore(ctx, serverConfig(data, nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := st.SwapTable(ctx, "x", []byte("not the entry"), nil) // reads it
	if err != nil || old == nil {
		t.Fatalf("reading the entry: %q %v", old, err)
	}
	if _, ok, err := st.SwapTable(ctx, "x", old, []byte{0xff, 0xff, 0xff}); err != nil || !ok {
		t.Fatalf("damaging the entry: %v %v", ok, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	url, _ = runLoggedServer(t, data, &logs, nil)
	runSteps(t, url, []step{
		{args: []string{"put", "y", "k", "v"}},
		{args: []string{"doctor", "--data-dir", t.TempDir()}, want: []string{"server degraded at ", "catalog/x", "the catalog entry of table x cannot be read"}},
		{args: []string{"table", "drop", "x"}, wantCode: 1, wantErr: "--force"},
		{args: []string{"table", "drop", "x", "--force"}},
		{args: []string{"doctor", "--data-dir", t.TempDir()}, want: []string{"server ok at "}},
		{args: []string{"table", "ls"}, want: []string{"y"}},
	})
	for _, topic := range []string{"wail.intents.x", "wail.events.x", "wail.dlq.x"} {
		if _, err := os.Stat(filepath.Join(data, "log", topic)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("topic %s after the drop: %v; want it deleted", topic, err)
		}
	}
}

// TestRunbookDropUnresolved: a drop of a table whose intents no resolver
// resolved. The page says: it fails naming the unresolved intents; `wail
// table describe t` shows the lag; a resolver that runs brings it to 0 and
// the drop goes through (or --force drops at once).
func TestRunbookDropUnresolved(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	var logs logbuf.Buffer
	fast := func(cfg *config.Config) { cfg.CatalogRefresh = 200 * time.Millisecond } // a drop waits for refreshes
	url, stop := runLoggedServer(t, data, &logs, func(cfg *config.Config) {
		fast(cfg)
		cfg.Resolver.Enabled = false
	})
	runSteps(t, url, []step{
		{args: []string{"table", "create", "t", "--partitions", "2", "--visibility-window", "100ms"}},
		{args: []string{"table", "create", "u", "--partitions", "1"}},
		{args: []string{"put", "t", "k", "v"}},
		{args: []string{"put", "u", "k", "v"}},
		{args: []string{"table", "drop", "t"}, wantCode: 1, wantErr: "failed_precondition: table busy: table t has 1 unresolved intents (partitions ["},
		{args: []string{"table", "describe", "t"}, want: []string{"LAG"}},
		{args: []string{"table", "drop", "u", "--force"}},
	})
	stop()
	url, _ = runLoggedServer(t, data, &logs, fast)
	deadline := time.Now().Add(10 * time.Second)
	for { // as the error says: until describe shows lag 0
		_, out, _ := runCLI(context.Background(), url, "", "table", "describe", "t")
		if f := strings.Fields(out[strings.LastIndex(out, "total"):]); len(f) > 3 && f[3] == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe once a resolver runs:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runSteps(t, url, []step{
		{args: []string{"tail", "t", "--from", "beginning"}, want: []string{"key=k "}, timeout: 3 * time.Second},
		{args: []string{"table", "drop", "t"}},
		{args: []string{"table", "describe", "t"}, wantCode: 1, wantErr: "not_found"},
	})
}

// TestRunbookDamagedResolverOffsets: the resolvers' committed offsets file
// damaged. The page says: the start is refused naming `wail log repair`;
// run it; the resolvers resolve every retained intent again, publishing no
// version the event topic still holds.
func TestRunbookDamagedResolverOffsets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	var logs logbuf.Buffer
	url, stop := runLoggedServer(t, data, &logs, nil)
	runSteps(t, url, []step{
		{args: []string{"table", "create", "t", "--partitions", "2"}},
		{args: []string{"put", "t", "k1", "v1"}},
		{args: []string{"put", "t", "k2", "v2"}},
		{args: []string{"put", "t", "k1", "v3"}},
	})
	events := func() string {
		t.Helper()
		code, out, errOut := runCLI(ctx, url, "", "tail", "t", "--from", "beginning", "--until-end")
		if code != 0 {
			t.Fatalf("tail: %s", errOut)
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	before := events()
	for strings.Count(before, "UPSERT") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("events before: %s", before)
		}
		time.Sleep(20 * time.Millisecond)
		before = events()
	}
	stop()
	offsets := filepath.Join(data, "log", "wail.intents.t", "offsets", "wail-resolver")
	if err := os.WriteFile(offsets, []byte("WOF1 damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := startErr(ctx, data); err == nil || !strings.Contains(err.Error(), "wail log repair") {
		t.Fatalf("start with the offsets file damaged: %v; want an error naming wail log repair", err)
	}
	if code, out, errOut := runCLI(ctx, "", "", "log", "repair", data); code != 0 || !strings.Contains(out, "reset group wail-resolver of wail.intents.t") {
		t.Fatalf("log repair: code %d\n%s%s", code, out, errOut)
	}
	url, _ = runLoggedServer(t, data, &logs, nil)
	runSteps(t, url, []step{{args: []string{"put", "t", "k3", "v4"}}})
	deadline = time.Now().Add(10 * time.Second)
	after := events()
	for !strings.Contains(after, "key=k3 ") {
		if time.Now().After(deadline) {
			t.Fatalf("events after the repair: %s", after)
		}
		time.Sleep(20 * time.Millisecond)
		after = events()
	}
	if got := strings.Count(after, "UPSERT"); got != 4 {
		t.Errorf("%d events after the repair and one more write, want 4 (none published again):\nbefore:\n%s\nafter:\n%s", got, before, after)
	}
}

// TestRunbookOverload: writes past proxy.max_backlog while no resolver
// publishes. The page says: writes are refused resource_exhausted with
// `overloaded: table t has N intents ...`, /healthz says proxy/overload;
// once a resolver catches up, writes are taken and the condition clears.
func TestRunbookOverload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	var logs logbuf.Buffer
	small := func(cfg *config.Config) { cfg.Proxy.MaxBacklog = 2 }
	url, stop := runLoggedServer(t, data, &logs, func(cfg *config.Config) {
		small(cfg)
		cfg.Resolver.Enabled = false
	})
	runSteps(t, url, []step{{args: []string{"table", "create", "t", "--partitions", "1"}}})
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		code, _, errOut := runCLI(ctx, url, "", "put", "t", fmt.Sprint("k", i), "v")
		if code != 0 {
			if !strings.Contains(errOut, "resource_exhausted: overloaded: table t has ") || !strings.Contains(errOut, "(proxy.max_backlog 2)") {
				t.Fatalf("put %d refused: %s; want resource_exhausted: overloaded naming proxy.max_backlog", i, errOut)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no write refused past proxy.max_backlog 2")
		}
		time.Sleep(50 * time.Millisecond) // the backlog is measured every 250 ms
	}
	runSteps(t, url, []step{
		{args: []string{"doctor", "--data-dir", t.TempDir()}, want: []string{"server degraded at ", "proxy/overload", "writes to t (", "are refused (resource_exhausted)"}},
	})
	stop()
	url, _ = runLoggedServer(t, data, &logs, small)
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, out, _ := runCLI(ctx, url, "", "doctor", "--data-dir", t.TempDir())
		if code == 0 && strings.Contains(out, "server       ok at ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("doctor once a resolver runs:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runSteps(t, url, []step{{args: []string{"put", "t", "after", "v"}}})
}
