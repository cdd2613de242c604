package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// nopLog and nopStore take everything at once: the benchmarks measure the
// proxy's own cost (stamping, encoding, metrics, tracing).
type nopLog struct{}

func (nopLog) Append(context.Context, string, []*intentlog.Record) error { return nil }

type nopStore struct{}

func (nopStore) Apply(_ context.Context, _ string, muts []store.Mutation) ([]store.Outcome, error) {
	return make([]store.Outcome, len(muts)), nil
}
func (nopStore) Get(context.Context, string, []byte, store.Level) (store.Row, bool, error) {
	return store.Row{}, false, nil
}
func (nopStore) Levels() []string { return []string{"local"} }

func benchProxy(b *testing.B) *Proxy {
	clock, err := hlc.New(3, nil)
	if err != nil {
		b.Fatal(err)
	}
	tbs := tables{"t": {Name: "t", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: 10 * time.Second}}
	return New(nopLog{}, nopStore{}, tbs, clock, Limits{MaxKeyBytes: 64, MaxValueBytes: 1024, MaxBatch: 1000}, NewMetrics(prometheus.NewRegistry()))
}

// benchBatches writes batches of 50 mutations with 100-byte values; one
// op is one mutation.
func benchBatches(b *testing.B, p *Proxy) {
	const batch = 50
	muts := make([]Mutation, batch)
	for i := range muts {
		muts[i] = Mutation{Table: "t", Key: fmt.Appendf(nil, "key-%d", i), Value: make([]byte, 100)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		p.Write(context.Background(), muts)
	}
}

// BenchmarkProxyWrite is the proxy's write path over a log and a store
// that cost nothing.
func BenchmarkProxyWrite(b *testing.B) { benchBatches(b, benchProxy(b)) }
