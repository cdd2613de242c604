package resolver

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// BenchmarkCore measures the decision logic alone: one op is one intent
// ingested, read, published and committed (1000 keys, batches of 256).
func BenchmarkCore(b *testing.B) {
	c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1, Horizon: time.Minute}, 0, nil)
	now := t0
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%04d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var off int64
	for done := 0; done < b.N; {
		n := min(256, b.N-done)
		entries := make([]Entry, n)
		for i := range entries {
			v := hlc.At(now) + uint64(off)<<10
			entries[i] = Entry{Offset: off, Intent: intent.Intent{Key: keys[off%1000], Op: intent.Upsert, Version: v, CreatedAt: now}}
			off++
		}
		c.Ingest(now, entries)
		rd := c.Ready()
		for _, rq := range rd.Reads {
			c.ReadDone(now, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: store.Row{Version: hlc.At(now) + uint64(off)<<10}})
		}
		c.Published(now, c.Ready().Events)
		c.Ready()
		done += n
		now = now.Add(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "intents/s")
}

// BenchmarkResolver measures the whole resolver on the embedded log and
// Pebble (fsync on): intents and rows are written first, then the timer
// runs while a resolver resolves all of them. One op is one intent.
func BenchmarkResolver(b *testing.B) {
	for _, keys := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) { benchResolver(b, keys) })
	}
}

func benchResolver(b *testing.B, keys int) {
	ctx := context.Background()
	dir := b.TempDir()
	log, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tb := catalog.Table{Name: "bench", Partitions: 8, VisibilityWindow: 10 * time.Second}
	bus := eventbus.New(log)
	if err := log.CreateTopic(ctx, intent.Topic(tb.Name), 8, intentlog.TopicOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := bus.CreateTable(ctx, tb.Name, 8, 0); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateTable(ctx, tb.Name); err != nil {
		b.Fatal(err)
	}
	preload(b, ctx, log, st, tb.Name, keys)
	r := New(log, st, bus, Config{Group: "g", Concurrency: 64, BackoffMin: time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100000})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ResetTimer()
	go func() { done <- r.Run(rctx, []catalog.Table{tb}, nil) }()
	for {
		committed, _ := log.Committed(ctx, "g", intent.Topic(tb.Name))
		var total int64
		for _, c := range committed {
			total += c
		}
		if total >= int64(b.N) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "intents/s")
}

// preload writes b.N intents and their rows (100-byte values).
func preload(b *testing.B, ctx context.Context, log intentlog.Log, st store.Store, table string, keys int) {
	clock, _ := hlc.New(1, nil)
	value := make([]byte, 100)
	for done := 0; done < b.N; {
		n := min(1000, b.N-done)
		recs := make([]*intentlog.Record, n)
		muts := make([]store.Mutation, n)
		for i := range recs {
			key := []byte(fmt.Sprintf("key-%07d", (done+i)%keys))
			in := intent.Intent{Table: table, Key: key, Op: intent.Upsert, Version: clock.Now(), CreatedAt: time.Now()}
			v, _ := in.Marshal()
			recs[i] = &intentlog.Record{Key: key, Value: v}
			muts[i] = store.Mutation{Key: key, Value: value, Version: in.Version}
		}
		if err := log.Append(ctx, intent.Topic(table), recs); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Apply(ctx, table, muts); err != nil {
			b.Fatal(err)
		}
		done += n
	}
}
