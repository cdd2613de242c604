package storetest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// The benchmarks below are shared by the stores that talk to a database
// server; open returns a store on a fresh database or schema.

// BenchApply measures batches of 50 puts of 100-byte values to fresh keys;
// ops/s counts mutations.
func BenchApply(b *testing.B, open func(b *testing.B) store.Store) {
	const batch = 50
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s := open(b)
			if err := s.CreateTable(b.Context(), "bench"); err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 100)
			var seq atomic.Uint64
			worker := func(next func() bool) {
				muts := make([]store.Mutation, batch)
				for next() {
					for i := range muts {
						n := seq.Add(1)
						muts[i] = store.Mutation{Key: binary.BigEndian.AppendUint64(nil, n), Value: value, Version: n}
					}
					if _, err := s.Apply(b.Context(), "bench", muts); err != nil {
						b.Errorf("Apply: %v", err)
						return
					}
				}
			}
			RunWorkers(b, conc, worker)
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// RunWorkers resets b's timer and runs worker from conc goroutines (with
// one, in the benchmark's own), each calling it until next says b.N calls
// are done.
func RunWorkers(b *testing.B, conc int, worker func(next func() bool)) {
	b.ResetTimer()
	if conc == 1 {
		worker(b.Loop)
		return
	}
	// RunParallel starts parallelism*GOMAXPROCS goroutines.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((conc + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) { worker(pb.Next) })
}

// seedReads creates table bench with n keys (big-endian uint64 0..n-1)
// of 100-byte values, for the read benchmarks.
func seedReads(b *testing.B, s store.Store, n int) {
	if err := s.CreateTable(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	for start := 0; start < n; start += 1000 {
		var muts []store.Mutation
		for i := start; i < min(start+1000, n); i++ {
			muts = append(muts, store.Mutation{Key: binary.BigEndian.AppendUint64(nil, uint64(i)), Value: value, Version: 1})
		}
		if _, err := s.Apply(b.Context(), "bench", muts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchGet measures point reads of 100-byte values over 10k keys, 16 readers.
func BenchGet(b *testing.B, open func(b *testing.B) store.Store) {
	const nkeys = 10000
	s := open(b)
	seedReads(b, s, nkeys)
	b.SetParallelism(8)
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

// BenchGetMany measures reads of 100 random keys of 10,000 at a time
// (the resolver's read-back: GetMany), from 8 goroutines per CPU;
// ops/s is keys read per second.
func BenchGetMany(b *testing.B, open func(b *testing.B) store.Store) {
	const nkeys, batch = 10000, 100
	s := open(b)
	mg, ok := s.(store.MultiGetter)
	if !ok {
		b.Skip("the store reads one key at a time")
	}
	seedReads(b, s, nkeys)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		keys := make([][]byte, batch)
		for pb.Next() {
			for i := range keys {
				keys[i] = binary.BigEndian.AppendUint64(nil, uint64(r.IntN(nkeys)))
			}
			reads, err := mg.GetMany(b.Context(), "bench", keys, 0)
			if err != nil || len(reads) != batch {
				b.Errorf("GetMany: %d reads, %v", len(reads), err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
}

// BenchApplyDoc is the cost of a typed table's queryable copy (the doc
// column, store.Mutation.Doc) on a database's write path: the same
// batches of 50 puts of one shop.Order (its Protobuf bytes, its schema
// id) with and without its JSON document, from 16 writers, on one store.
// The two cases alternate in one run (rounds), so that a machine's load
// weighs on both; ops/s counts mutations.
func BenchApplyDoc(b *testing.B, open func(b *testing.B) store.Store) {
	const batch = 50
	value := []byte("\x0a\x03o-1\x10\xe2\x09\x1a\x07\x0a\x03tea\x10\x02")
	doc := []byte(`{"id":"o-1","cents":"1250","lines":[{"sku":"tea","qty":2}]}`)
	s := open(b)
	if err := s.CreateTable(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Uint64
	for _, tc := range []struct {
		name string
		doc  []byte
	}{{"untyped", nil}, {"doc", doc}, {"untyped-again", nil}, {"doc-again", doc}} {
		b.Run(tc.name, func(b *testing.B) {
			worker := func(next func() bool) {
				muts := make([]store.Mutation, batch)
				for next() {
					for i := range muts {
						n := seq.Add(1)
						muts[i] = store.Mutation{Key: binary.BigEndian.AppendUint64(nil, n), Value: value, Version: n}
						if tc.doc != nil {
							muts[i].Doc, muts[i].SchemaID = tc.doc, 1
						}
					}
					if _, err := s.Apply(b.Context(), "bench", muts); err != nil {
						b.Errorf("Apply: %v", err)
						return
					}
				}
			}
			RunWorkers(b, 16, worker)
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
