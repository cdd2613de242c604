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
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
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
			benchTypedWrites(b, url, tc.table, tc.mut)
		})
	}
}

// benchTypedWrites writes b.N mutations of table, made by mut, through the API
// at url: 4 clients, batches of 50; it reports writes/s.
func benchTypedWrites(b *testing.B, url, table string, mut func(m *wailv1.Mutation)) {
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
					m := &wailv1.Mutation{Table: table, Key: fmt.Appendf(nil, "key-%d", i)}
					mut(m)
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
}

// BenchmarkWriteTypedSQL is the cost of typed tables, their queryable
// copy included (the doc column: the proxy prints the value as JSON, the
// store writes it as jsonb or JSON in the same statement), on the write
// path of a PostgreSQL or MySQL store, as BenchmarkWriteTyped measures it
// (API, 4 clients, batches of 50, resolver off, the log's fsync off; the
// database commits as configured). Each case has a fresh schema or
// database; run it with -count and alternate, the machine's load weighs.
func BenchmarkWriteTypedSQL(b *testing.B) {
	file := filepath.Join(b.TempDir(), "orders.proto")
	if err := os.WriteFile(file, []byte(ordersV1), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := order("o-1", 1250, "tea", 2)
	const js = `{"id":"o-1","cents":"1250","lines":[{"sku":"tea","qty":2}]}`
	for _, kind := range []string{config.StorePostgres, config.StoreMySQL} {
		for _, tc := range []struct {
			name, table string
			mut         func(m *wailv1.Mutation)
		}{
			{"untyped", "plain", func(m *wailv1.Mutation) { m.Value = bin }},
			{"typed-binary", "orders", func(m *wailv1.Mutation) { m.Value = bin }},
			{"typed-json", "orders", func(m *wailv1.Mutation) { m.ValueJson = js }},
		} {
			b.Run(kind+"/"+tc.name, func(b *testing.B) {
				var dsn string
				if kind == config.StorePostgres {
					dsn = sqltest.Postgres(b)
					dsn = sqltest.WithSearchPath(b, dsn, sqltest.PostgresSchema(b, dsn))
				} else {
					dsn = sqltest.MySQLDatabase(b, sqltest.MySQL(b))
				}
				url := servertest.Start(b, func(c *config.Config) {
					c.Store = config.Store{Kind: kind, DSN: dsn, MaxConns: 8, QueryTimeout: 10 * time.Second}
					c.Log.NoSync = true
					c.Resolver.Enabled = false
					c.Tables = []config.Table{{Name: "plain"}, {Name: "orders", ValueProto: file, ValueMessage: "Order"}}
				})
				benchTypedWrites(b, url, tc.table, tc.mut)
			})
		}
	}
}
