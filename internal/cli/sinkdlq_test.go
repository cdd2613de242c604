package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestSinkDLQCommands: a sink whose endpoint answers 500 (with a 1 MiB
// body) for one key: `wail sink dlq ls` lists the letter with the status
// and a bounded excerpt, show shows the event, redrive (endpoint fixed)
// delivers it once and a second redrive sends nothing; an unknown sink is
// not_found with the command that lists sinks.
func TestSinkDLQCommands(t *testing.T) {
	t.Parallel()
	var (
		failing atomic.Bool
		mu      sync.Mutex
		got     = map[string]int{} // key@version -> times taken
	)
	failing.Store(true)
	huge := strings.Repeat("E", 1<<20)
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range b.Events {
			if string(e.Key) == "poison" && failing.Load() {
				http.Error(w, huge, http.StatusInternalServerError)
				return
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Events {
			got[string(e.Key)]++
		}
	}))
	defer ep.Close()
	taken := func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		return got[key]
	}
	url := servertest.Start(t, nil)
	bg := context.Background()
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(bg, url, "", args...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	must("table", "create", "t", "--partitions", "1")
	must("sink", "create", "t", "hook", "--webhook", ep.URL, "--start", "beginning", "--max-attempts", "1", "--backoff-min", "5ms")
	must("put", "t", "poison", "v1")
	must("put", "t", "ok", "v")

	var ls string
	for deadline := time.Now().Add(time.Minute); !strings.Contains(ls, "poison"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter listed:\n%s", ls)
		}
		ls = must("sink", "dlq", "ls", "t", "hook")
	}
	rows := strings.Split(strings.TrimSpace(ls), "\n")
	if len(rows) != 2 || !strings.Contains(rows[1], "sink") || !strings.Contains(rows[1], "HTTP 500: EEE") || !strings.Contains(rows[1], "unsettled") {
		t.Fatalf("sink dlq ls:\n%s", ls)
	}
	off := strings.Fields(rows[1])[0]
	show := must("sink", "dlq", "show", "t", "hook", off)
	for _, want := range []string{"Sink:", "hook", "Event:", "UPSERT", "HTTP status:", "500", "Value:", "v1", "wail sink dlq redrive t hook " + off} {
		if !strings.Contains(show, want) {
			t.Errorf("sink dlq show: no %q in\n%s", want, show)
		}
	}
	if len(show) > 4<<10 {
		t.Errorf("sink dlq show printed %d bytes: the endpoint's 1 MiB error body is not bounded", len(show))
	}
	for deadline := time.Now().Add(time.Minute); taken("ok") == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sink did not go on past the dead letter")
		}
	}

	failing.Store(false)
	var out string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		code, o, errOut := runCLI(bg, url, "", "sink", "dlq", "redrive", "t", "hook", off)
		if code == 0 {
			out = o
			break
		}
		// failed_precondition: the runner has not joined its group yet
		if !strings.Contains(errOut, "failed_precondition") || time.Now().After(deadline) {
			t.Fatalf("sink dlq redrive: exit %d\n%s%s", code, o, errOut)
		}
	}
	if want := off + " redriven: the endpoint took v"; !strings.Contains(out, want) {
		t.Fatalf("sink dlq redrive: %q, want %q", out, want)
	}
	if again := must("sink", "dlq", "redrive", "t", "hook", off); again != out || taken("poison") != 1 {
		t.Fatalf("second redrive printed %q (first %q); the endpoint took poison %d times, want once", again, out, taken("poison"))
	}
	if got := must("sink", "dlq", "ls", "t", "hook"); got != "no dead letters in sink hook of table t\n" {
		t.Fatalf("sink dlq ls after the redrive: %q", got)
	}
	if got := must("sink", "dlq", "ls", "t", "hook", "--include-settled"); !strings.Contains(got, "redriven") {
		t.Fatalf("sink dlq ls --include-settled: %q", got)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"sink", "dlq", "ls", "t", "nope"}, []string{"not_found", `no sink "nope"`, "wail sink ls t"}},
		{[]string{"sink", "dlq", "redrive", "t", "nope", "--all"}, []string{"not_found", "wail sink ls t"}},
		{[]string{"sink", "dlq", "show", "t", "hook", "99"}, []string{"not_found", "wail sink dlq ls t hook --include-settled"}},
		{[]string{"sink", "dlq", "drop", "t", "hook"}, []string{"wail sink dlq ls t hook", "--all"}},
		{[]string{"sink", "dlq", "ls", "nope", "hook"}, []string{"not_found", "wail table ls"}},
	} {
		code, _, errOut := runCLI(bg, url, "", tc.args...)
		for _, w := range tc.want {
			if code == 0 || !strings.Contains(errOut, w) {
				t.Errorf("%q: exit %d, %q; want an error saying %q", tc.args, code, errOut, w)
			}
		}
	}
}
