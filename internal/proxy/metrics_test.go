package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/store"
)

// series gathers reg into "name{label=value,...}" -> value, keeping the
// series that are not zero.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if v := m.GetCounter().GetValue(); v != 0 {
				out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
			}
		}
	}
	return out
}

// TestMetrics: each outcome of a write moves the counters docs/operations.md
// tells operators to alert on, and only those.
func TestMetrics(t *testing.T) {
	t.Parallel()
	const (
		muts    = "wail_proxy_mutations_total"
		intents = "wail_proxy_intent_append_errors_total{}"
		slow    = "wail_proxy_slow_intent_appends_total{}"
		stErrs  = "wail_proxy_store_write_errors_total"
		aborts  = "wail_proxy_abort_append_errors_total{}"
	)
	k, v := []byte("k"), []byte("v")
	tests := []struct {
		name   string
		w      world
		window time.Duration // 0: 10 s
		m      Mutation
		want   map[string]float64
	}{
		{name: "stored", m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=stored,table=tx}": 1}},
		{name: "deleted", m: Mutation{Table: "ind", Key: k, Delete: true},
			want: map[string]float64{muts + "{result=stored,table=ind}": 1}},
		{name: "superseded", w: world{Rows: map[string]store.Row{"k": {Version: hlc.At(time.Now().Add(time.Hour))}}},
			m: Mutation{Table: "tx", Key: k, Value: v}, want: map[string]float64{muts + "{result=superseded,table=tx}": 1}},
		{name: "unknown table: no label per made-up name", m: Mutation{Table: "nope", Key: k},
			want: map[string]float64{muts + "{result=rejected,table=}": 1}},
		{name: "invalid", m: Mutation{Table: "tx"},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1}},
		{name: "transactional, log down", w: world{LogFails: true}, m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1, intents: 1}},
		{name: "independent, log down", w: world{LogFails: true}, m: Mutation{Table: "ind", Key: k, Value: v},
			want: map[string]float64{muts + "{result=unlogged,table=ind}": 1, intents: 1}},
		{name: "log cut off at W/2", w: world{LogBlock: true}, window: 40 * time.Millisecond, m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1, intents: 1, slow: 1}},
		{name: "log answered after W/2", w: world{LogDelay: 30 * time.Millisecond}, window: 40 * time.Millisecond, m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1, slow: 1}},
		{name: "independent, log answered after W/2", w: world{LogDelay: 30 * time.Millisecond}, window: 40 * time.Millisecond, m: Mutation{Table: "ind", Key: k, Value: v},
			want: map[string]float64{muts + "{result=stored,table=ind}": 1, slow: 1}},
		{name: "store did not apply", w: world{StErr: errNotApplied}, m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1, stErrs + "{outcome=not_applied}": 1}},
		{name: "store outcome unknown", w: world{StErr: errStoreDown}, m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1, stErrs + "{outcome=unknown}": 1}},
		{name: "ABORT not logged", w: world{StErr: errNotApplied, AbortFails: true}, m: Mutation{Table: "tx", Key: k, Value: v},
			want: map[string]float64{muts + "{result=rejected,table=tx}": 1, stErrs + "{outcome=not_applied}": 1, aborts: 1}},
	}
	for i := range tests {
		tc := &tests[i]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			w := &tc.w
			window := tc.window
			if window == 0 {
				window = 10 * time.Second
			}
			rows := w.Rows
			p := newMeteredProxy(t, w, window, NewMetrics(reg))
			maps.Copy(w.Rows, rows)
			p.Write(context.Background(), []Mutation{tc.m})
			if got := series(t, reg); !maps.Equal(got, tc.want) {
				t.Errorf("metrics\n%v\nwant\n%v", sorted(got), sorted(tc.want))
			}
		})
	}
}

func sorted(m map[string]float64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %g", k, v))
	}
	slices.Sort(out)
	return out
}

// TestLatencyMetrics: each write of a table observes the steps it took,
// and how long they took, in the latency histograms.
func TestLatencyMetrics(t *testing.T) {
	t.Parallel()
	k, v := []byte("k"), []byte("v")
	tests := []struct {
		name                 string
		w                    world
		m                    Mutation
		write, append, store uint64 // samples
		appendAtLeast        time.Duration
	}{
		{name: "stored", m: Mutation{Table: "tx", Key: k, Value: v}, write: 1, append: 1, store: 1},
		{name: "slow log", w: world{LogDelay: 30 * time.Millisecond}, m: Mutation{Table: "tx", Key: k, Value: v},
			write: 1, append: 1, store: 1, appendAtLeast: 30 * time.Millisecond},
		{name: "transactional, log down: no store write", w: world{LogFails: true}, m: Mutation{Table: "tx", Key: k, Value: v}, write: 1, append: 1},
		{name: "independent, log down", w: world{LogFails: true}, m: Mutation{Table: "ind", Key: k, Value: v}, write: 1, append: 1, store: 1},
		{name: "store outcome unknown", w: world{StErr: errStoreDown}, m: Mutation{Table: "tx", Key: k, Value: v}, write: 1, append: 1, store: 1},
		{name: "invalid: nothing", m: Mutation{Table: "tx"}},
	}
	for i := range tests {
		tc := &tests[i]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := NewMetrics(prometheus.NewRegistry())
			p := newMeteredProxy(t, &tc.w, 10*time.Second, m)
			p.Write(context.Background(), []Mutation{tc.m})
			count := func(h *prometheus.HistogramVec) (uint64, float64) {
				var d dto.Metric
				if err := h.WithLabelValues(tc.m.Table).(prometheus.Histogram).Write(&d); err != nil {
					t.Fatal(err)
				}
				return d.GetHistogram().GetSampleCount(), d.GetHistogram().GetSampleSum()
			}
			w, _ := count(m.writeTime)
			a, asum := count(m.appendTime)
			s, _ := count(m.storeTime)
			if w != tc.write || a != tc.append || s != tc.store {
				t.Errorf("samples: write %d append %d store %d, want %d %d %d", w, a, s, tc.write, tc.append, tc.store)
			}
			if asum < tc.appendAtLeast.Seconds() {
				t.Errorf("append took %v s, want >= %v", asum, tc.appendAtLeast)
			}
		})
	}
}
