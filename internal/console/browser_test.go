package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/servicetest"
)

// chromium finds the browser: WAIL_CHROMIUM, else chromium on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WAIL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	servicetest.Missing(t, "chromium is not installed: run `bash scripts/chromium.sh install`")
	return ""
}

// artifacts is where the browser test saves its screenshots:
// WAIL_TEST_ARTIFACTS, else a directory under the system's temp dir.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WAIL_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wail-test-artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// acks counts acknowledged writes, in all and by partition of table t (2
// partitions).
type acks struct {
	all   atomic.Int64
	parts [2]atomic.Int64
}

// load writes batches to table t until stop: keys k-N, and needle-N in
// every fifth batch. It counts the acknowledged writes.
func load(ctx context.Context, t *testing.T, url string, stop <-chan struct{}, acked *acks, opts ...connect.ClientOption) {
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url, opts...)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		var muts []*wailv1.Mutation
		for i := range 20 {
			muts = append(muts, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k-%d", (n*20+i)%500), Value: fmt.Appendf(nil, `{"n":%d}`, n)})
		}
		if n%5 == 0 {
			muts = append(muts, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "needle-%d", n%3), Value: fmt.Appendf(nil, `{"needle":%d}`, n)})
		}
		resp, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("load: %v", err)
			}
			return
		}
		acked.all.Add(int64(len(resp.Msg.Results)))
		for i := range resp.Msg.Results {
			acked.parts[intentlog.Partition(muts[i].Key, 2)].Add(1)
		}
	}
}

// browser is a headless Chromium page and the test's helpers around it.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// newBrowser starts Chromium; it ends with ctx.
func newBrowser(ctx context.Context, t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return &browser{t: t, ctx: bctx, shots: artifacts(t)}
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// waitJS polls a JavaScript expression until it is true. An expression
// that fails is polled again (the page may be loading: signing out
// reloads it), and its last error said if it never comes true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if ok && err == nil {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML("body"))
			b.t.Fatalf("never: %s (last error: %v)\n%s", what, err, html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// do runs actions.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// redrive lists table t's dead letters on the console's page, clicks
// Redrive on the letter of key, and waits for the key's event at version
// on the Key page.
func (b *browser) redrive(url, key string, offset int64, version uint64, shot string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url + "/console/#dlq"))
	b.waitJS("the table select filled", `document.querySelector('#dlq-table option[value="t"]') !== null`)
	b.do(chromedp.Click(`#dlq-form button[type="submit"]`))
	sel := fmt.Sprintf(`#dlq-list tbody tr[data-offset="%d"]`, offset)
	row := `document.querySelector('` + sel + `')`
	b.waitJS("the dead letter of "+key+" listed with its redrive button", row+` && `+row+`.cells[2].textContent === `+strconv.Quote(key)+
		` && !`+row+`.querySelector('button.redrive').disabled`)
	b.shot(shot + "-before")
	b.do(chromedp.Click(sel + " button.redrive"))
	b.waitJS("the redrive done", `document.querySelector('#dlq-state').textContent.includes('redrove offset')`)
	b.waitJS("the letter settled (listed without its unsettled row)", `!(`+row+`)`)
	b.shot(shot + "-after")
	b.do(chromedp.Navigate(url + "/console/#key"))
	b.waitJS("the table select filled", `document.querySelector('#key-table option[value="t"]') !== null`)
	b.do(chromedp.SetValue("#key-key", key), chromedp.Click(`#key-form button[type="submit"]`))
	b.waitJS(fmt.Sprintf("the event of %s at version %d, redriven", key, version),
		fmt.Sprintf(`document.querySelector('#key-events tbody tr[data-version="%d"]') !== null`, version))
}

// TestBrowser drives the console in headless Chromium against a server
// under load: every page loads; the live charts show data; once the load
// stops their counters match /metrics; the tail filtered by key shows
// only those keys; a key's row, the tables and the dead letters show.
// Screenshots of each page go to the artifacts directory.
func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := newBrowser(ctx, t)
	srv, url := servertest.StartServer(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 2}}
		c.Console.MaxTails = 8
	})

	stop := make(chan struct{})
	var acked acks
	var wg sync.WaitGroup
	wg.Go(func() { load(ctx, t, url, stop, &acked) })
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	shot, waitJS := b.shot, b.waitJS
	bctx := b.ctx

	// Live: data while under load.
	card := `document.querySelector('.table-card[data-table="t"]')`
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#live")); err != nil {
		t.Fatal(err)
	}
	waitJS("live write and event rates", card+` && Number(`+card+`.querySelector('[data-field="write_rate"]').dataset.value) > 0 && Number(`+
		card+`.querySelector('[data-field="event_rate"]').dataset.value) > 0`)
	waitJS("a write-to-event p99", card+` && Number(`+card+`.querySelector('[data-field="p99"]').dataset.value) > 0`)
	waitJS("both partitions listed", card+`.querySelectorAll('.partitions tr[data-partition]').length === 2`)
	waitJS("the busiest partition's write rate", card+` && Number(`+card+`.querySelector('[data-field="partition_write_rate_max"]').dataset.value) > 0`)
	waitJS("the busiest partition named", card+`.querySelector('[data-field="busiest_partition"]').textContent.startsWith('partition ')`)
	shot("live")

	// Tail, filtered by key, under load.
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#tail")); err != nil {
		t.Fatal(err)
	}
	waitJS("the table select filled", `document.querySelector('#tail-table option[value="t"]') !== null`)
	if err := chromedp.Do(bctx, chromedp.SetValue("#tail-key", "needle"), chromedp.Click(`#tail-form button[type="submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitJS("three needle events in the tail", `document.querySelectorAll('#tail-list tbody tr').length >= 3`)
	keys, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#tail-list tbody tr')].map(r => r.dataset.key)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "needle-") {
			t.Errorf("the tail filtered by needle shows key %q", k)
		}
	}
	shot("tail")

	// Key: the store's row.
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#key")); err != nil {
		t.Fatal(err)
	}
	waitJS("the table select filled", `document.querySelector('#key-table option[value="t"]') !== null`)
	if err := chromedp.Do(bctx, chromedp.SetValue("#key-key", "needle-0"), chromedp.Click(`#key-form button[type="submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitJS("the key's row", `document.querySelector('#key-row').textContent.includes('"needle"')`)
	waitJS("the key's events from the bus", `document.querySelectorAll('#key-events tbody tr').length >= 1`)
	shot("key")

	// Stop the load: the live counters must come to match /metrics.
	stopLoad()
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#live")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, metrics := get(t, url+"/metrics")
		writes := metricValue(t, metrics, "wail_proxy_mutations_total", `table="t"`, `result="stored"`) +
			metricValue(t, metrics, "wail_proxy_mutations_total", `table="t"`, `result="superseded"`)
		events := metricValue(t, metrics, "wail_resolver_events_total", `table="t"`)
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`(() => { const c = `+card+`; return c ? [c.querySelector('[data-field="writes_total"]').textContent, `+
			`c.querySelector('[data-field="events_total"]').textContent] : ["", ""]; })()`))
		if err != nil {
			t.Fatal(err)
		}
		// Writes by partition: counted by the proxy, not in /metrics;
		// their source is the writes acknowledged, by the key's partition.
		byPart := eval[[]string](b, `[...`+card+`.querySelectorAll('.partitions tr[data-partition]')].map(r => r.querySelector('[data-field="writes_total"]').textContent)`)
		wantParts := []string{fmt.Sprint(acked.parts[0].Load()), fmt.Sprint(acked.parts[1].Load())}
		if int64(writes) == acked.all.Load() && shown[0] == fmt.Sprint(writes) && shown[1] == fmt.Sprint(events) && events > 0 && slices.Equal(byPart, wantParts) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console shows writes %s events %s, by partition %v; /metrics says %v and %v (%d acknowledged, by partition %v)",
				shown[0], shown[1], byPart, writes, events, acked.all.Load(), wantParts)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Tables.
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#tables")); err != nil {
		t.Fatal(err)
	}
	waitJS("table t with its 2 partitions", `(() => { const r = document.querySelector('#tables-list tr[data-table="t"]'); return r !== null && r.cells[3].textContent === "2"; })()`)
	shot("tables")

	// Dead letters: a key whose event was lost has a letter; Redrive
	// publishes its event.
	stored := servertest.Lose(t, srv, "t", "lost", `{"lost":true}`, false)
	offs := servertest.DeadLetters(t, srv, "t", letter("lost", stored))
	b.redrive(url, "lost", offs[0], stored, "dlq")
}

// letter is a dead letter of key's intent at version in table t.
func letter(key string, version uint64) *wailv1.DeadLetter {
	return &wailv1.DeadLetter{
		Table: "t", Key: []byte(key), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
		Intents:       []*wailv1.Intent{{Table: "t", Key: []byte(key), Op: wailv1.Op_OP_UPSERT, Version: version, IntentId: "x"}},
		IntentOffsets: []int64{0}, Error: "read failed", Attempts: 5, ResolverId: "r-1",
	}
}
