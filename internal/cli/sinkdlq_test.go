package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// mustCLI returns a runner of CLI commands against url that must succeed
// (it returns their output).
func mustCLI(t *testing.T, url string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(context.Background(), url, "", args...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
}

// TestSinkDLQCommands: a sink (one event a request, so that only the
// failing key's event is dead-lettered) whose endpoint answers 500 (with a
// 1 MiB body) for one key: `wail sink dlq ls` lists the letter with the status
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
	url, bg := servertest.Start(t, nil), context.Background()
	must := mustCLI(t, url)
	must("table", "create", "t", "--partitions", "1")
	must("sink", "create", "t", "hook", "--webhook", ep.URL, "--start", "beginning", "--max-attempts", "1", "--backoff-min", "5ms", "--max-batch", "1")
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

// TestSinkDLQPagesAndBadInput: `wail sink dlq ls --limit 2` pages a sink's
// five letters (each page says how to get the next, and the pages hold
// each letter once); bad input to the sink dead-letter calls is refused
// with the right code and a message that says what to do.
func TestSinkDLQPagesAndBadInput(t *testing.T) {
	t.Parallel()
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"cD`) { // the keys "p0".."p4", base64 in JSON
			http.Error(w, "refused", http.StatusBadRequest)
		}
	}))
	defer ep.Close()
	url, bg := servertest.Start(t, nil), context.Background()
	must := mustCLI(t, url)
	must("table", "create", "t", "--partitions", "1")
	must("sink", "create", "t", "hook", "--webhook", ep.URL, "--start", "beginning", "--max-batch", "1")
	for i := range 5 {
		must("put", "t", fmt.Sprintf("p%d", i), "v")
	}
	for deadline := time.Now().Add(time.Minute); strings.Count(must("sink", "dlq", "ls", "t", "hook"), "\n") < 6; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sink did not dead-letter its 5 events")
		}
	}

	seen := map[string]bool{}
	args, pages := []string{"sink", "dlq", "ls", "t", "hook", "--limit", "2"}, 0
	for ; args != nil; pages++ {
		out := must(args...)
		args = nil
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if next, ok := strings.CutPrefix(line, "more: wail "); ok {
				args = append(strings.Fields(next), "--limit", "2")
				continue
			}
			off := strings.Fields(line)[0]
			if seen[off] {
				t.Fatalf("offset %s on two pages", off)
			}
			seen[off] = true
		}
		if rows := len(strings.Split(strings.TrimSpace(out), "\n")) - 1; (args != nil && rows != 3) || pages > 3 {
			t.Fatalf("page %d: %d lines, want 2 letters and the next command:\n%s", pages, rows, out)
		}
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("%d letters on %d pages, want 5 on 3", len(seen), pages)
	}

	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	neg := int64(-5)
	for _, tc := range []struct {
		name string
		call func() error
		code connect.Code
		want string
	}{
		{"ls after -5", func() error {
			_, err := admin.ListDeadLetters(bg, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", Sink: "hook", AfterOffset: &neg}))
			return err
		}, connect.CodeInvalidArgument, "after_offset must be -1 or more"},
		{"ls limit -1", func() error {
			_, err := admin.ListDeadLetters(bg, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", Sink: "hook", Limit: -1}))
			return err
		}, connect.CodeInvalidArgument, "limit 0 or more"},
		{"ls unknown sink", func() error {
			_, err := admin.ListDeadLetters(bg, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", Sink: "nope"}))
			return err
		}, connect.CodeNotFound, "wail sink ls t"},
		{"show -1", func() error {
			_, err := admin.GetDeadLetter(bg, connect.NewRequest(&wailv1.GetDeadLetterRequest{Table: "t", Sink: "hook", Offset: -1}))
			return err
		}, connect.CodeInvalidArgument, "offsets 0 and up"},
		{"show unknown letter", func() error {
			_, err := admin.GetDeadLetter(bg, connect.NewRequest(&wailv1.GetDeadLetterRequest{Table: "t", Sink: "hook", Offset: 99}))
			return err
		}, connect.CodeNotFound, "wail sink dlq ls t hook --include-settled"},
		{"redrive unknown letter", func() error {
			_, err := admin.RedriveDeadLetters(bg, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "t", Sink: "hook", Offsets: []int64{99}}))
			return err
		}, connect.CodeNotFound, "wail sink dlq ls t hook"},
		{"redrive offset -3", func() error {
			_, err := admin.RedriveDeadLetters(bg, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "t", Sink: "hook", Offsets: []int64{-3}}))
			return err
		}, connect.CodeInvalidArgument, "-3"},
		{"redrive nothing selected", func() error {
			_, err := admin.RedriveDeadLetters(bg, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "t", Sink: "hook"}))
			return err
		}, connect.CodeInvalidArgument, "all"},
		{"redrive unknown table", func() error {
			_, err := admin.RedriveDeadLetters(bg, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "nope", Sink: "hook", All: true}))
			return err
		}, connect.CodeNotFound, "wail table ls"},
		{"drop unknown letter", func() error {
			_, err := admin.DropDeadLetters(bg, connect.NewRequest(&wailv1.DropDeadLettersRequest{Table: "t", Sink: "hook", Offsets: []int64{99}}))
			return err
		}, connect.CodeNotFound, "wail sink dlq ls t hook"},
	} {
		err := tc.call()
		if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.code, tc.want)
		}
	}
	if code, _, errOut := runCLI(bg, url, "", "sink", "dlq", "ls", "t", "hook", "--after", "x"); code == 0 || !strings.Contains(errOut, "--after") {
		t.Errorf("ls --after x: exit %d, %q; want a usage error naming --after", code, errOut)
	}
}

// TestClaimedLetterState: a letter a redrive holds is "redriving" in ls,
// and show names the holder, since when, and what takes it over.
func TestClaimedLetterState(t *testing.T) {
	e := &wailv1.DeadLetterEntry{Offset: 7, Letter: &wailv1.DeadLetter{Table: "orders", Key: []byte("o-1"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK,
		Sink: "billing", Event: &wailv1.ChangeEvent{Key: []byte("o-1"), Version: 3}, EventOffset: 40},
		Claim: &wailv1.DeadLetterClaim{Offset: 7, Id: "c", Epoch: 2, AtUs: 1763700001000000, Holder: "host h1 pid 42 (sink billing, partition 0 epoch 2)"}}
	q := letterQueue{table: "orders", sink: "billing"}
	var ls, show strings.Builder
	if err := printLetters(&ls, q, &wailv1.ListDeadLettersResponse{Entries: []*wailv1.DeadLetterEntry{e}}); err != nil {
		t.Fatal(err)
	}
	if err := printLetter(&show, q, e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ls.String(), " redriving ") {
		t.Errorf("ls:\n%s\nwant the state redriving", ls.String())
	}
	want := "redriving by host h1 pid 42 (sink billing, partition 0 epoch 2) since 2025-11-21T04:40:01Z (if that process died, wail sink dlq redrive orders billing 7 takes it over)"
	if !strings.Contains(show.String(), want) {
		t.Errorf("show:\n%s\nwant %q", show.String(), want)
	}
}
