package pebble

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// BenchmarkApply: single synced 100-byte puts to fresh keys.
func BenchmarkApply(b *testing.B) {
	for _, conc := range []int{1, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s := openT(b, b.TempDir(), Options{})
			defer s.Close()
			if err := s.CreateTable(b.Context(), "bench"); err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 100)
			var seq atomic.Uint64
			worker := func(next func() bool) {
				key := make([]byte, 8)
				muts := make([]store.Mutation, 1)
				for next() {
					n := seq.Add(1)
					binary.BigEndian.PutUint64(key, n)
					muts[0] = store.Mutation{Key: key, Value: value, Version: n}
					out, err := s.Apply(b.Context(), "bench", muts)
					if err != nil || !out[0].Applied {
						b.Errorf("Apply: %+v, %v", out, err)
						return
					}
				}
			}
			b.ResetTimer()
			if conc == 1 {
				worker(b.Loop)
			} else {
				// RunParallel starts parallelism*GOMAXPROCS goroutines.
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((conc + procs - 1) / procs)
				b.RunParallel(func(pb *testing.PB) { worker(pb.Next) })
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkGet: point reads of 100-byte values over 10k keys.
func BenchmarkGet(b *testing.B) {
	const nkeys = 10000
	s := openT(b, b.TempDir(), Options{NoSync: true})
	defer s.Close()
	if err := s.CreateTable(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	muts := make([]store.Mutation, 0, nkeys)
	for i := range nkeys {
		muts = append(muts, store.Mutation{Key: binary.BigEndian.AppendUint64(nil, uint64(i)), Value: value, Version: 1})
	}
	if _, err := s.Apply(b.Context(), "bench", muts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		key := make([]byte, 8)
		for pb.Next() {
			binary.BigEndian.PutUint64(key, uint64(r.IntN(nkeys)))
			if _, found, err := s.Get(b.Context(), "bench", key, 0); err != nil || !found {
				b.Errorf("Get(%x): found=%v err=%v", key, found, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
