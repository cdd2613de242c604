package reconcile

import (
	"fmt"
	"testing"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// BenchmarkRun reconciles a table of 100k keys (8 partitions) whose bus
// has an event for each, a tenth of them behind: the store scan, one pass
// over every event partition, reads of the keys behind and their intents.
// It reports keys/s.
func BenchmarkRun(b *testing.B) {
	const keys = 100_000
	r := newRig(b, 8)
	ctx := b.Context()
	for lo := 0; lo < keys; lo += 1000 {
		var muts []store.Mutation
		var evs []intent.Event
		for i := lo; i < lo+1000; i++ {
			k := []byte(fmt.Sprintf("key-%07d", i))
			muts = append(muts, store.Mutation{Key: k, Value: []byte("value"), Version: uint64(100 + i%10)})
			v := uint64(100 + i%10)
			if i%10 == 9 {
				v-- // the bus is behind on a tenth of the keys
			}
			evs = append(evs, intent.Event{Table: "t", Key: k, Op: intent.Upsert, Version: v, Value: []byte("value")})
		}
		if _, err := r.store.Apply(ctx, "t", muts); err != nil {
			b.Fatal(err)
		}
		if err := r.bus.Publish(ctx, "t", evs); err != nil {
			b.Fatal(err)
		}
	}
	r.resolveAll()
	o := r.opts()
	o.DryRun = true
	b.ResetTimer()
	for b.Loop() {
		rep, err := Run(ctx, o, r.table, nil)
		if err != nil || rep.Scanned != keys || rep.Behind != keys/10 {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(keys*b.N)/b.Elapsed().Seconds(), "keys/s")
}
