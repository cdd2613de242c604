package cli

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/servicetest"
)

// runCLI runs one command line against addr with stdin.
func runCLI(ctx context.Context, addr, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut logbuf.Buffer
	getenv := func(k string) string {
		if k == "WAIL_ADDR" {
			return addr
		}
		return ""
	}
	code = run(ctx, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: getenv}, args)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, func(cfg *config.Config) { cfg.CatalogRefresh = 50 * time.Millisecond })
	steps := []struct {
		args       []string
		stdin      string
		wantCode   int
		wantOut    string // substring of stdout ("" = anything)
		wantErrOut string // substring of stderr
	}{
		{args: []string{"table", "create", "orders", "--partitions", "2", "--visibility-window", "5s", "--failure-mode", "independent"},
			wantOut: "created table orders (failure mode independent, window 5s, 2 partitions, max attempts 10, max retry time 1m0s)"},
		{args: []string{"table", "create", "orders", "--partitions", "2", "--visibility-window", "5s", "--failure-mode", "independent"},
			wantOut: "table already exists: orders"},
		{args: []string{"table", "create", "orders", "--partitions", "3"}, wantCode: 1, wantErrOut: "error: already_exists: "},
		{args: []string{"table", "create", "x", "--failure-mode", "eventual"}, wantCode: 2, wantErrOut: "--failure-mode"},
		{args: []string{"table", "ls"}, wantOut: "NAME    FAILURE MODE  WINDOW  PARTITIONS  STATE\norders  independent   5s      2           ready\n"},
		{args: []string{"table", "alter", "orders", "--visibility-window", "7s", "--max-attempts", "5"},
			wantOut: "altered table orders (failure mode independent, window 7s, 2 partitions, max attempts 5, max retry time 1m0s)"},
		{args: []string{"table", "alter", "orders", "--visibility-window", "7s"}, wantOut: "table unchanged: orders"},
		{args: []string{"table", "alter", "orders"}, wantCode: 2, wantErrOut: "nothing to alter"},
		{args: []string{"table", "alter", "orders", "--failure-mode", "eventual"}, wantCode: 2, wantErrOut: "--failure-mode"},
		{args: []string{"table", "alter", "orders", "--visibility-window", "1ms"}, wantCode: 1,
			wantErrOut: "error: invalid_argument: invalid table definition: visibility_window 1ms out of range 10ms..24h"},
		{args: []string{"table", "alter", "nope", "--max-attempts", "3"}, wantCode: 1, wantErrOut: "error: not_found:"},
		{args: []string{"table", "drop", "nope"}, wantCode: 1, wantErrOut: "error: not_found:"},
		{args: []string{"table", "create", "scratch", "--visibility-window", "100ms", "--partitions", "1"}, wantOut: "created table scratch"},
		{args: []string{"put", "scratch", "k", "v"}, wantOut: "version=N"},
		{args: []string{"table", "drop", "scratch", "--force"}, wantOut: "dropped table scratch\n"},
		{args: []string{"get", "scratch", "k"}, wantCode: 1, wantErrOut: "error: not_found:"},
		// Flags a command does not use are not offered there.
		{args: []string{"serve", "--addr", "127.0.0.1:1"}, wantCode: 2, wantErrOut: "unknown flag: --addr"},
		{args: []string{"serve", "--timeout", "1s"}, wantCode: 2, wantErrOut: "unknown flag: --timeout"},
		{args: []string{"proxy", "--resolver-id", "a"}, wantCode: 2, wantErrOut: "unknown flag: --resolver-id"},
		{args: []string{"resolve", "--proxy-id", "1"}, wantCode: 2, wantErrOut: "unknown flag: --proxy-id"},
		{args: []string{"demo", "--addr", "127.0.0.1:1"}, wantCode: 2, wantErrOut: "unknown flag: --addr"},
		{args: []string{"doctor", "--listen", "127.0.0.1:1"}, wantCode: 2, wantErrOut: "unknown flag: --listen"},
		{args: []string{"tail", "orders", "--timeout", "1s"}, wantCode: 2, wantErrOut: "unknown flag: --timeout"},
		{args: []string{"put", "orders", "k1", "v1"}, wantOut: "version=N intent_logged=true stored=true superseded=false\n"},
		{args: []string{"put", "orders", "--hex", "00ff", "@-"}, stdin: "binary\x00", wantOut: "version=N "},
		{args: []string{"get", "orders", "k1"}, wantOut: "v1"},
		{args: []string{"get", "orders", "--hex", "0x00ff"}, wantOut: "62696e61727900\n"},
		{args: []string{"get", "orders", "--base64", "AP8="}, wantOut: "YmluYXJ5AA==\n"},
		{args: []string{"get", "orders", "k1", "--json"}, wantOut: `"version":"N"`},
		{args: []string{"delete", "orders", "k1", "--json"}, wantOut: `"intentLogged":true`},
		{args: []string{"get", "orders", "k1"}, wantCode: 1, wantErrOut: "not found: key k1 in table orders (deleted at version N)"},
		{args: []string{"get", "orders", "nope"}, wantCode: 1, wantErrOut: "not found: key nope"},
		{args: []string{"get", "nope", "k"}, wantCode: 1, wantErrOut: "error: not_found: unknown table \"nope\" (create it with `wail table create nope`)"},
		{args: []string{"put", "orders", "", "v"}, wantCode: 2, wantErrOut: "error: wail put: KEY is empty"},
		{args: []string{"get", "orders", "--hex", "zz"}, wantCode: 2, wantErrOut: "invalid hex"},
		{args: []string{"put", "orders", "k"}, wantCode: 2, wantErrOut: "takes 3 argument(s)"},
		{args: []string{"put", "--bogus"}, wantCode: 2, wantErrOut: "unknown flag"},
		{args: []string{"frobnicate"}, wantCode: 2, wantErrOut: "unknown command"},
		{args: []string{"table"}, wantCode: 2, wantErrOut: "needs a subcommand"},
		{args: []string{"tail", "orders", "--from", "yesterday"}, wantCode: 2, wantErrOut: "--from"},
		{args: []string{"table", "describe", "orders"}, wantOut: "Failure mode:       independent"},
		{args: []string{"--addr", "ftp://x", "table", "ls"}, wantCode: 2, wantErrOut: "scheme"},
	}
	ctx := context.Background()
	for _, s := range steps {
		code, out, errOut := runCLI(ctx, url, s.stdin, s.args...)
		out, errOut = anyVersion(out), anyVersion(errOut)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErrOut) {
			t.Errorf("wail %q: code %d, stdout %q, stderr %q; want code %d, stdout with %q, stderr with %q",
				s.args, code, out, errOut, s.wantCode, s.wantOut, s.wantErrOut)
		}
	}
}

func TestDescribeOffsets(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	ctx := context.Background()
	runCLI(ctx, url, "", "table", "create", "t", "--partitions", "2")
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		runCLI(ctx, url, "", "put", "t", k, "v")
	}
	// The resolver commits every 200ms: wait for it.
	var total []string
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var code int
		code, out, _ = runCLI(ctx, url, "", "table", "describe", "t")
		if code != 0 || !strings.Contains(out, "PARTITION  INTENT END  COMMITTED  LAG  EVENT END") {
			t.Fatalf("describe: code %d\n%s", code, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if total = strings.Fields(lines[len(lines)-1]); strings.Join(total, " ") == "total 5 5 0 5" {
			return
		}
	}
	t.Errorf("total row = %q\n%s", total, out)
}

func TestTail(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	bg := context.Background()
	runCLI(bg, url, "", "table", "create", "t", "--partitions", "1")
	runCLI(bg, url, "", "put", "t", "k1", strings.Repeat("x", 300))
	_, second, _ := runCLI(bg, url, "", "put", "--hex", "t", "00", "00")
	runCLI(bg, url, "", "delete", "t", "k2") // another key: k1's put and delete could coalesce into one event
	v2 := strings.TrimPrefix(strings.Fields(second)[0], "version=")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"tail", "t", "--from", "beginning"}, []string{
			"UPSERT key=k1 version=N value=" + strings.Repeat("x", 200) + "...",
			"UPSERT key=0x00 version=N value=0x00",
			"DELETE key=k2 version=N",
		}},
		{[]string{"tail", "t", "--from", "v" + v2, "--json"}, []string{`"op":"OP_DELETE"`}},
	} {
		ctx, cancel := context.WithTimeout(bg, 2*time.Second)
		code, out, errOut := runCLI(ctx, url, "", tc.args...)
		out = anyVersion(out)
		cancel()
		if code != 0 {
			t.Errorf("%q: exit %d: %s", tc.args, code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(tc.want) {
			t.Fatalf("%q printed %d lines, want %d:\n%s", tc.args, len(lines), len(tc.want), out)
		}
		// Events of different keys may be resolved in any order.
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q printed no line with %q:\n%s", tc.args, w, out)
			}
		}
	}
}

func TestBaseAndDialAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"127.0.0.1:7070": "http://127.0.0.1:7070", "https://h:1/": "https://h:1"} {
		if got, err := (client.Options{Addr: in}).BaseURL(); err != nil || got != want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"0.0.0.0:80": "127.0.0.1:80", ":81": "127.0.0.1:81", "[::]:82": "[::1]:82",
		"http://10.0.0.1:83": "10.0.0.1:83"} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

var versionRE = regexp.MustCompile(`(version=|"version":"|at version )[0-9]+`)

// anyVersion replaces the versions in CLI output with N: they come from the
// server's clock.
func anyVersion(s string) string { return versionRE.ReplaceAllString(s, "${1}N") }

func TestDoctor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	// Nothing listens on port 1: the server's health is not checked.
	code, out, errOut := runCLI(ctx, "127.0.0.1:1", "", "doctor", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "store        ok (read levels [local])") || !strings.Contains(out, "catalog      ok (0 tables)") ||
		!strings.Contains(out, "server       none answers at http://127.0.0.1:1 (health not checked)") ||
		!strings.Contains(out, "log          ok (embedded)") || !strings.Contains(out, "topics       ok (0 topics of 0 tables)") {
		t.Fatalf("doctor: code %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(ctx, "127.0.0.1:1", "", "doctor", "--store", "postgres")
	if code != 1 || !strings.Contains(errOut, "store.dsn is required for store.kind postgres") {
		t.Fatalf("doctor without a dsn: code %d, %s", code, errOut)
	}
}

// TestDoctorChecksTheLog: doctor checks the log and each table's topics
// (its dead-letter topic too: without it no letter can be written), not
// only the store.
func TestDoctorChecksTheLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	url, stop := runServer(t, func(cfg *config.Config) { cfg.DataDir = dir })
	if code, _, errOut := runCLI(ctx, url, "", "table", "create", "t", "--partitions", "2"); code != 0 {
		t.Fatal(errOut)
	}
	stop()
	code, out, errOut := runCLI(ctx, "127.0.0.1:1", "", "doctor", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "topics       ok (3 topics of 1 tables)") {
		t.Fatalf("doctor: code %d\n%s%s", code, out, errOut)
	}
	for _, topic := range []string{"wail.dlq.t", "wail.events.t"} {
		if err := os.RemoveAll(filepath.Join(dir, "log", topic)); err != nil {
			t.Fatal(err)
		}
		code, out, errOut = runCLI(ctx, "127.0.0.1:1", "", "doctor", "--data-dir", dir)
		if code != 1 || !strings.Contains(out, "topics       FAIL: "+topic+" of table t is missing") || !strings.Contains(errOut, "failed checks: [topics]") {
			t.Fatalf("doctor with %s missing: code %d\n%s%s", topic, code, out, errOut)
		}
	}
	code, out, _ = runCLI(ctx, "127.0.0.1:1", "", "doctor", "--data-dir", t.TempDir(), "--log", "kafka", "--brokers", closedAddr(t))
	if code != 1 || !strings.Contains(out, "log          FAIL: ") {
		t.Fatalf("doctor with the broker down: code %d\n%s", code, out)
	}
	t.Run("kafka", func(t *testing.T) { // skipped, and listed by make test, without a broker
		brokers := strings.Join(servicetest.KafkaBrokers(t), ",")
		code, out, errOut := runCLI(t.Context(), "127.0.0.1:1", "", "doctor", "--data-dir", t.TempDir(), "--log", "kafka", "--brokers", brokers)
		if code != 0 || !strings.Contains(out, "log          ok (kafka [") {
			t.Fatalf("doctor with Kafka: code %d\n%s%s", code, out, errOut)
		}
	})
}

// TestDoctorDamagedCatalogEntry: doctor names a table whose catalog entry
// cannot be read, and what to run, instead of skipping it (the server
// leaves such a table unserved and says the same on /healthz).
func TestDoctorDamagedCatalogEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	st, err := server.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.SwapTable(ctx, "x", nil, []byte{0xff, 0xff, 0xff}); err != nil || !ok {
		t.Fatalf("saving a damaged entry: %v %v", ok, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(ctx, "127.0.0.1:1", "", "doctor", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "catalog      FAIL: the catalog entry of table x cannot be read (") ||
		!strings.Contains(out, "`wail table drop x --force`, or restore the entry") || !strings.Contains(errOut, "failed checks: [catalog]") {
		t.Fatalf("doctor with a damaged entry: code %d\n%s%s", code, out, errOut)
	}
}

// runServer runs a server (as the demo does) until stop or the test's end.
func runServer(t *testing.T, mutate func(*config.Config)) (url string, stop func()) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return serveUntilStop(t, srv)
}

// serveUntilStop runs srv until stop or the test's end.
func serveUntilStop(t *testing.T, srv *server.Server) (url string, stop func()) {
	t.Helper()
	addr, stopServer, err := startServer(context.Background(), srv)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := stopServer(); err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + addr, stop
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestTailUntilEnd: tail --until-end prints what exists and exits, with
// the cursor on stderr; --cursor then prints exactly what came after.
func TestTailUntilEnd(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	bg := context.Background()
	runCLI(bg, url, "", "table", "create", "t", "--partitions", "3")
	// tail --until-end until n events exist; returns them and the cursor
	await := func(from []string, n int) ([]string, string) {
		t.Helper()
		var out, errOut string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var code int
			code, out, errOut = runCLI(bg, url, "", append([]string{"tail", "t", "--until-end"}, from...)...)
			if code != 0 || !strings.HasPrefix(errOut, "cursor: c") {
				t.Fatalf("tail --until-end %q: exit %d, stderr %q", from, code, errOut)
			}
			if strings.Count(out, "\n") >= n {
				return strings.Split(strings.TrimSpace(out), "\n"), strings.TrimSpace(strings.TrimPrefix(errOut, "cursor: "))
			}
		}
		t.Fatalf("tail --until-end %q: %q, want %d events", from, out, n)
		return nil, ""
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		runCLI(bg, url, "", "put", "t", k, "v")
	}
	// The puts' events first: a put and a delete of a resolved together
	// would coalesce into one event.
	await([]string{"--from", "beginning"}, 4)
	runCLI(bg, url, "", "delete", "t", "a") // a tombstone: offsets are not dense
	first, cursor := await([]string{"--from", "beginning"}, 5)
	if len(first) != 5 {
		t.Fatalf("printed %d events, want 5:\n%s", len(first), strings.Join(first, "\n"))
	}
	runCLI(bg, url, "", "put", "t", "e", "v")
	next, _ := await([]string{"--cursor", cursor}, 1)
	if len(next) != 1 || !strings.Contains(next[0], "key=e ") {
		t.Fatalf("from the cursor: %q, want only e's event", next)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cursor", "xyz"}, "not a cursor"},
		{[]string{"--cursor", cursor, "--from", "beginning"}, "give one"},
		{[]string{"--cursor", "cAAAA"}, "invalid cursor: it is too short"},
	} {
		code, _, errOut := runCLI(bg, url, "", append([]string{"tail", "t", "--until-end"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("tail %q: exit %d, %q; want an error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestGroupCommands: wail consume prints a member's events and commits
// them; group ls, describe and reset show and move the group.
func TestGroupCommands(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	bg := context.Background()
	runCLI(bg, url, "", "table", "create", "t", "--partitions", "2")
	for _, k := range []string{"a", "b", "c"} {
		runCLI(bg, url, "", "put", "t", k, "v")
	}
	var out, errOut string
	for deadline := time.Now().Add(10 * time.Second); strings.Count(out, "\n") < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("consume printed %q, %q; want 3 events", out, errOut)
		}
		ctx, cancel := context.WithTimeout(bg, time.Second)
		var code int
		code, out, errOut = runCLI(ctx, url, "", "consume", "t", "--group", "g", "--member", "m1")
		cancel()
		if code != 0 || !strings.Contains(errOut, "granted partition") {
			t.Fatalf("consume: exit %d, %q", code, errOut)
		}
		// a second run prints only what the first did not commit
	}
	if code, out, _ := runCLI(bg, url, "", "group", "ls", "t"); code != 0 || out != "g\n" {
		t.Fatalf("group ls: %d %q", code, out)
	}
	// the server sees the member leave once its stream's connection closed
	var code int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, out, _ = runCLI(bg, url, "", "group", "describe", "t", "g")
		if code != 0 || !strings.Contains(out, "total") {
			t.Fatalf("group describe: %d\n%s", code, out)
		}
		if strings.Contains(out, "members: none") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member is still in the group after its consume ended:\n%s", out)
		}
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	last := strings.Fields(rows[len(rows)-1])
	if last[0] != "total" || last[1] != "0" {
		t.Fatalf("lag after consuming everything: %q\n%s", last, out)
	}
	code, out, errOut = runCLI(bg, url, "", "group", "reset", "t", "g", "--to", "beginning")
	if code != 0 || !strings.Contains(out, "total") || strings.Contains(out, "total  0") || errOut != "" {
		t.Fatalf("group reset: %d\n%s%s", code, out, errOut)
	}
	// A reset of a group that does not exist creates it: a typo of the
	// name left the group meant where it was, saying nothing.
	code, _, errOut = runCLI(bg, url, "", "group", "reset", "t", "gg", "--to", "beginning")
	if code != 0 || !strings.Contains(errOut, "new group gg: table t had no group of that name (`wail group ls t` lists them)") {
		t.Fatalf("group reset of a new group: %d, stderr %q; want it said new", code, errOut)
	}
	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	if _, out, _ := runCLI(ctx, url, "", "consume", "t", "--group", "g", "--member", "m2"); strings.Count(out, "\n") != 3 {
		t.Fatalf("after the reset: %q, want the 3 events again", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"group", "describe", "t", "nope"}, "not_found"},
		{[]string{"group", "describe", "t", "bad name"}, "invalid group"},
		{[]string{"group", "reset", "t", "g", "--to", "snapshot"}, "cannot be reset"},
		{[]string{"consume", "t", "--group", "g"}, "--member"},
	} {
		code, _, errOut := runCLI(bg, url, "", tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want an error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestBenchFlagErrors: a wrong find-max option is a usage error (exit 2)
// that names it, before anything runs.
func TestBenchFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--find-max", "--confirm", "-1"}, "--confirm must not be negative"},
		{[]string{"bench", "floor", "--confirm", "-2"}, "--confirm must not be negative"},
		{[]string{"bench", "--find-max", "--max-steps", "0"}, "--max-steps must be positive"},
	} {
		code, _, errOut := runCLI(context.Background(), "", "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and an error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}
