package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// BenchmarkWrite measures the write path through the real API (Connect
// over HTTP/1.1, fsync on for log and store), 4 clients sending batches of
// 50 distinct keys with 100-byte values, with and without the resolver
// running beside it. One op is one mutation.
func BenchmarkWrite(b *testing.B) {
	for _, resolver := range []bool{false, true} {
		b.Run(fmt.Sprintf("resolver=%v", resolver), func(b *testing.B) {
			url := servertest.Start(b, func(c *config.Config) {
				c.Log.NoSync, c.Store.NoSync = false, false
				c.Resolver.Enabled = resolver
				c.Tables = []config.Table{{Name: "t"}}
			})
			benchWrites(b, url)
		})
	}
}

func benchWrites(b *testing.B, url string) {
	const clients, batch = 4, 50
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	pc := wailv1connect.NewProducerServiceClient(hc, url)
	value := make([]byte, 100)
	var next atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < clients; w++ {
		wg.Go(func() {
			for {
				start := next.Add(batch) - batch
				if start >= int64(b.N) {
					return
				}
				req := &wailv1.WriteRequest{}
				for i := start; i < min(start+batch, int64(b.N)); i++ {
					req.Mutations = append(req.Mutations, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "key-%d", i), Value: value})
				}
				t0 := time.Now()
				if _, err := pc.Write(context.Background(), connect.NewRequest(req)); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lats = append(lats, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
}
