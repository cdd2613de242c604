package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/console"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// retainedLog is a log whose retention the test sets: offsets below floor
// are gone (Bounds starts there; a reader below it, or one that waited
// there while retention struck, answers ErrOffsetOutOfRange, as Kafka's
// and the embedded log's do once retention removed their position).
type retainedLog struct {
	intentlog.Log
	mu    sync.Mutex
	floor int64
}

func (l *retainedLog) retain(start int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.floor = start
}

func (l *retainedLog) below(off int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return off < l.floor
}

func (l *retainedLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	start, end, err := l.Log.Bounds(ctx, topic, p)
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(start, l.floor), max(end, l.floor), err
}

func (l *retainedLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	if l.below(offset) {
		return nil, fmt.Errorf("read %s/%d at %d: %w", topic, p, offset, intentlog.ErrOffsetOutOfRange)
	}
	rd, err := l.Log.NewReader(topic, p, offset)
	if err != nil {
		return nil, err
	}
	return &retainedReader{Reader: rd, l: l, pos: offset}, nil
}

type retainedReader struct {
	intentlog.Reader
	l   *retainedLog
	pos int64
}

func (r *retainedReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if r.l.below(r.pos) {
		return nil, intentlog.ErrOffsetOutOfRange
	}
	recs, err := r.Reader.Next(ctx)
	if err != nil {
		return nil, err
	}
	if r.l.below(r.pos) { // retention struck while it waited
		return nil, intentlog.ErrOffsetOutOfRange
	}
	r.pos = r.Reader.Position()
	return recs, nil
}

func (r *retainedReader) Position() int64 { return r.pos }

// TestBrowserTailGap: when retention removes events the console's live
// tail has not read yet (a slow tail, a short log.event_retention), the
// tail shows a gap line naming the partition and the offsets [from, to)
// whose events it will never show, and goes on with the events past it.
// Before, the tail ended with "offset out of range": nothing said events
// were skipped, nor which.
func TestBrowserTailGap(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := newBrowser(ctx, t)
	base, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = base.Close() })
	topic := eventbus.Topic("t")
	if err := base.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	log := &retainedLog{Log: base}
	reg := prometheus.NewRegistry()
	c := console.New(console.Options{Log: log, RetentionGaps: group.NewRetentionGaps(reg), Table: func(name string) (catalog.Table, bool) {
		return catalog.Table{Name: "t", Partitions: 1}, name == "t"
	}})
	mux := http.NewServeMux()
	mux.Handle("/console/", c.Handler())
	// The pages list the tables through the API (Connect JSON).
	mux.HandleFunc("POST /wail.v1.AdminService/ListTables", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"tables":[{"name":"t","partitions":1}]}`)
	})
	srv := httptest.NewServer(mux)
	defer func() { srv.CloseClientConnections(); srv.Close() }() // the browser's tail is still open
	appendEvents := func(from, to int) {
		t.Helper()
		var recs []*intentlog.Record
		for i := from; i < to; i++ {
			rec, err := eventbus.Encode(&intent.Event{Table: "t", Key: fmt.Appendf(nil, "k-%d", i), Op: intent.Upsert, Version: uint64(i + 1),
				Value: fmt.Appendf(nil, `{"n":%d}`, i), IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 1})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		if err := base.Append(ctx, topic, recs); err != nil {
			t.Fatal(err)
		}
	}
	shown := func() []string {
		return eval[[]string](b, `[...document.querySelectorAll('#tail-list tbody tr')].map(r => r.classList.contains('gap') ? `+
			"`gap ${r.dataset.partition} ${r.dataset.from} ${r.dataset.to}` : r.cells[1].textContent)")
	}

	b.do(chromedp.Navigate(srv.URL + "/console/#tail"))
	b.waitJS("the table select filled", `document.querySelector('#tail-table option[value="t"]') !== null`)
	b.do(chromedp.Click(`#tail-form button[type="submit"]`))
	b.waitJS("the tail following", `document.querySelector('#tail-state').textContent.startsWith('following')`)
	appendEvents(0, 3)
	b.waitJS("offsets 0 to 2 in the tail", `document.querySelectorAll('#tail-list tbody tr').length === 3`)
	// Retention removes offsets 3 to 5 before the tail reads them.
	log.retain(6)
	appendEvents(3, 10)
	b.waitJS("a gap in the tail, or the tail ended", `document.querySelector('#tail-list tbody tr.gap') !== null || `+
		`document.querySelector('#tail-state').classList.contains('error')`)
	b.waitJS("offsets 6 to 9 in the tail, or the tail ended", `document.querySelectorAll('#tail-list tbody tr').length >= 8 || `+
		`document.querySelector('#tail-state').classList.contains('error')`)
	b.shot("tail-gap")
	if state := eval[string](b, `document.querySelector('#tail-state').textContent`); eval[bool](b, `document.querySelector('#tail-state').classList.contains('error')`) {
		t.Fatalf("the tail ended: %q; shown (newest first): %v", state, shown())
	}
	want := []string{"0/9", "0/8", "0/7", "0/6", "gap 0 3 6", "0/2", "0/1", "0/0"}
	if got := shown(); !slices.Equal(got, want) {
		t.Fatalf("the tail shows (newest first) %v, want %v", got, want)
	}
	line := eval[string](b, `document.querySelector('#tail-list tbody tr.gap').textContent`)
	for _, w := range []string{"partition 0", "offsets [3, 6)", "retention"} {
		if !strings.Contains(line, w) {
			t.Errorf("the gap line %q does not say %q", line, w)
		}
	}
	// Counted as a Subscribe stream's gap (wail_stream_retention_gaps_total{group=""}).
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]string{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += fmt.Sprintf("%s=%q ", l.GetName(), l.GetValue())
			}
			counted[f.GetName()] = fmt.Sprint(labels, m.GetCounter().GetValue())
		}
	}
	if want := map[string]string{
		"wail_stream_retention_gaps_total":            `group="" table="t" 1`,
		"wail_stream_retention_skipped_offsets_total": `group="" table="t" 3`,
	}; fmt.Sprint(counted) != fmt.Sprint(want) {
		t.Errorf("counted %v, want %v", counted, want)
	}
	if !eval[bool](b, `getComputedStyle(document.querySelector('#tail-list tbody tr.gap')).display !== 'none' && `+
		`document.querySelector('#tail-list tbody tr.gap').getBoundingClientRect().height > 0`) {
		t.Errorf("the gap line is not visible")
	}
}
