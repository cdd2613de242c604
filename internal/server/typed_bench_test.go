package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// BenchmarkWriteTyped is the cost of typed tables on the write path
// through the real API (Connect over HTTP/1.1, 4 clients, batches of 50,
// the resolver off, fsync off so that the CPU the check costs shows): the
// same shop.Order row written to an untyped table, to a typed table as
// binary (checked), with validation off, and as JSON (converted). One op
// is one mutation.
func BenchmarkWriteTyped(b *testing.B) {
	file := filepath.Join(b.TempDir(), "orders.proto")
	if err := os.WriteFile(file, []byte(ordersV1), 0o644); err != nil {
		b.Fatal(err)
	}
	off := false
	bin := order("o-1", 1250, "tea", 2)
	const js = `{"id":"o-1","cents":"1250","lines":[{"sku":"tea","qty":2}]}`
	for _, tc := range []struct {
		name, table string
		mut         func(m *wailv1.Mutation)
	}{
		{"untyped", "plain", func(m *wailv1.Mutation) { m.Value = bin }},
		{"typed-binary", "orders", func(m *wailv1.Mutation) { m.Value = bin }},
		{"typed-unvalidated", "loose", func(m *wailv1.Mutation) { m.Value = bin }},
		{"typed-json", "orders", func(m *wailv1.Mutation) { m.ValueJson = js }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			url := servertest.Start(b, func(c *config.Config) {
				c.Log.NoSync, c.Store.NoSync = true, true
				c.Resolver.Enabled = false
				c.Tables = []config.Table{{Name: "plain"}, {Name: "orders", ValueProto: file, ValueMessage: "Order"},
					{Name: "loose", ValueProto: file, ValueMessage: "Order", Validate: &off}}
			})
			const clients, batch = 4, 50
			pc := wailv1connect.NewProducerServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}, url)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range clients {
				wg.Go(func() {
					for {
						start := next.Add(batch) - batch
						if start >= int64(b.N) {
							return
						}
						req := &wailv1.WriteRequest{}
						for i := start; i < min(start+batch, int64(b.N)); i++ {
							m := &wailv1.Mutation{Table: tc.table, Key: fmt.Appendf(nil, "key-%d", i)}
							tc.mut(m)
							req.Mutations = append(req.Mutations, m)
						}
						resp, err := pc.Write(context.Background(), connect.NewRequest(req))
						if err != nil {
							b.Error(err)
							return
						}
						for _, r := range resp.Msg.Results {
							if r.Error != nil {
								b.Error(r.Error.Message)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
