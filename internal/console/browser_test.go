package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
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

// load writes batches to table t until stop: keys k-N, and needle-N in
// every fifth batch. It counts the acknowledged writes.
func load(ctx context.Context, t *testing.T, url string, stop <-chan struct{}, acked *atomic.Int64) {
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
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
		acked.Add(int64(len(resp.Msg.Results)))
	}
}

// TestBrowser drives the console in headless Chromium against a server
// under load: every page loads; the live charts show data; once the load
// stops their counters match /metrics; the tail filtered by key shows
// only those keys; a key's row, the tables and the dead letters show.
// Screenshots of each page go to the artifacts directory.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	shots := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := startServer(t, 8)

	stop := make(chan struct{})
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { load(ctx, t, url, stop, &acked) })
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	// eval polls a JavaScript expression until it is true.
	waitJS := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool]("!!("+expr+")"))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				html, _ := chromedp.Run(bctx, chromedp.OuterHTML("main"))
				t.Fatalf("never: %s\n%s", what, html)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Live: data while under load.
	card := `document.querySelector('.table-card[data-table="t"]')`
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#live")); err != nil {
		t.Fatal(err)
	}
	waitJS("live write and event rates", card+` && Number(`+card+`.querySelector('[data-field="write_rate"]').dataset.value) > 0 && Number(`+
		card+`.querySelector('[data-field="event_rate"]').dataset.value) > 0`)
	waitJS("a write-to-event p99", card+` && Number(`+card+`.querySelector('[data-field="p99"]').dataset.value) > 0`)
	waitJS("both partitions listed", card+`.querySelectorAll('.partitions tr[data-partition]').length === 2`)
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
		if int64(writes) == acked.Load() && shown[0] == fmt.Sprint(writes) && shown[1] == fmt.Sprint(events) && events > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console shows writes %s events %s; /metrics says %v and %v (%d acknowledged)", shown[0], shown[1], writes, events, acked.Load())
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Tables.
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#tables")); err != nil {
		t.Fatal(err)
	}
	waitJS("table t with its 2 partitions", `(() => { const r = document.querySelector('#tables-list tr[data-table="t"]'); return r !== null && r.cells[3].textContent === "2"; })()`)
	shot("tables")

	// Dead letters: none.
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/#dlq")); err != nil {
		t.Fatal(err)
	}
	waitJS("the table select filled", `document.querySelector('#dlq-table option[value="t"]') !== null`)
	if err := chromedp.Do(bctx, chromedp.Click(`#dlq-form button[type="submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitJS("the empty queue listed", `document.querySelector('#dlq-state').textContent.startsWith('0 dead letters')`)
	shot("dlq")
}
