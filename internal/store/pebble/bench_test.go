package pebble

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

// BenchmarkApply: synced puts of 100-byte values, one mutation per Apply
// from 1 and 64 goroutines, and batches of 1000 from 4 goroutines, over
// 10k keys each written once first (so every write checks a version).
func BenchmarkApply(b *testing.B) {
	for _, tc := range []struct{ batch, conc int }{{1, 1}, {1, 64}, {1000, 4}} {
		b.Run(fmt.Sprintf("batch=%d/conc=%d", tc.batch, tc.conc), func(b *testing.B) {
			benchApply(b, tc.batch, tc.conc)
		})
	}
}

func benchApply(b *testing.B, batch, conc int) {
	s, w := preloaded(b, 10000)
	defer s.Close()
	storetest.RunWorkers(b, conc, w.worker(batch))
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "writes/s")
}

// randomWrites writes batches of 100-byte values to random keys of
// [0, nkeys) of the table "bench", each with the next version of seq.
type randomWrites struct {
	b     *testing.B
	s     *Store
	nkeys int
	value []byte
	seq   atomic.Uint64
}

// preloaded opens a synced store whose table "bench" holds nkeys keys,
// each written once (so that every later write checks a version); the
// caller closes it.
func preloaded(b *testing.B, nkeys int) (*Store, *randomWrites) {
	s := openT(b, b.TempDir(), Options{})
	if err := s.CreateTable(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	w := &randomWrites{b: b, s: s, nkeys: nkeys, value: make([]byte, 100)}
	preload := make([]store.Mutation, nkeys)
	for i := range preload {
		preload[i] = store.Mutation{Key: binary.BigEndian.AppendUint64(nil, uint64(i)), Value: w.value, Version: w.seq.Add(1)}
	}
	if _, err := s.Apply(b.Context(), "bench", preload); err != nil {
		b.Fatal(err)
	}
	return s, w
}

// worker is a storetest.RunWorkers worker writing batches of batch keys.
func (w *randomWrites) worker(batch int) func(next func() bool) {
	return func(next func() bool) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		muts := make([]store.Mutation, batch)
		for i := range muts {
			muts[i] = store.Mutation{Key: make([]byte, 8), Value: w.value}
		}
		for next() {
			for i := range muts {
				binary.BigEndian.PutUint64(muts[i].Key, uint64(r.IntN(w.nkeys)))
				muts[i].Version = w.seq.Add(1)
			}
			if _, err := w.s.Apply(w.b.Context(), "bench", muts); err != nil {
				w.b.Errorf("Apply: %v", err)
				return
			}
		}
	}
}

// BenchmarkInsert: synced batches of 1000 keys never written, from 4
// goroutines, into a store that holds 200k other keys (flushed to tables):
//   - complete: reopened with a version cache that holds them all, so Open
//     loads them and every stripe is complete: a new key reads nothing;
//   - incomplete: the same cache, its stripes marked incomplete (as past
//     its bound, or before Open loaded it): a write reads its key's absence
//     from Pebble;
//   - off: no version cache (nor row cache).
func BenchmarkInsert(b *testing.B) {
	for _, tc := range []struct {
		name     string
		versions int
		complete bool
	}{{"complete", 1 << 20, true}, {"incomplete", 1 << 20, false}, {"off", -1, false}} {
		b.Run(tc.name, func(b *testing.B) {
			benchInsert(b, Options{VersionCacheKeys: tc.versions, RowCacheBytes: -1}, tc.complete)
		})
	}
}

func benchInsert(b *testing.B, opts Options, complete bool) {
	const nkeys, batch = 200000, 1000
	dir := b.TempDir()
	s := openT(b, dir, opts)
	if err := s.CreateTable(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	var seq atomic.Uint64
	for start := 0; start < nkeys; start += batch {
		muts := make([]store.Mutation, batch)
		for i := range muts {
			muts[i] = store.Mutation{Key: binary.BigEndian.AppendUint64(nil, uint64(start+i)<<1), Value: value, Version: seq.Add(1)}
		}
		if _, err := s.Apply(b.Context(), "bench", muts); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	s = openT(b, dir, opts)
	defer s.Close()
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	for i := range s.stripes {
		if s.stripes[i].complete != complete {
			if complete {
				b.Fatalf("stripe %d not complete after Open", i)
			}
			s.stripes[i].complete = false
		}
	}
	reads := s.versionReads.Load()
	var next atomic.Uint64
	worker := func(more func() bool) {
		muts := make([]store.Mutation, batch)
		for i := range muts {
			muts[i] = store.Mutation{Key: make([]byte, 8), Value: value}
		}
		for more() {
			for i := range muts {
				binary.BigEndian.PutUint64(muts[i].Key, next.Add(1)<<1|1) // odd: never preloaded
				muts[i].Version = seq.Add(1)
			}
			if _, err := s.Apply(b.Context(), "bench", muts); err != nil {
				b.Errorf("Apply: %v", err)
				return
			}
		}
	}
	storetest.RunWorkers(b, 4, worker)
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(s.versionReads.Load()-reads)/float64(b.N*batch), "reads/write")
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

// BenchmarkApplyAndRead: the resolver's shape next to the proxy's: 4
// goroutines write synced batches of 1000 random keys (of 10k) while 4
// read batches of 1000 random keys back with GetMany, as the resolver
// reads rows just written. Reports writes/s and reads/s; the reads wait
// for the batches in flight (never a row before it is durable).
func BenchmarkApplyAndRead(b *testing.B) {
	const nkeys, batch, conc = 10000, 1000, 4
	s, w := preloaded(b, nkeys)
	defer s.Close()
	stop := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(rand.Uint64(), 0))
			keys := make([][]byte, batch)
			for i := range keys {
				keys[i] = make([]byte, 8)
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, k := range keys {
					binary.BigEndian.PutUint64(k, uint64(r.IntN(nkeys)))
				}
				got, err := s.GetMany(b.Context(), "bench", keys, 0)
				if err != nil || len(got) != batch {
					b.Errorf("GetMany: %d reads, %v", len(got), err)
					return
				}
				reads.Add(int64(len(got)))
			}
		})
	}
	reads.Store(0)
	storetest.RunWorkers(b, conc, w.worker(batch))
	elapsed := b.Elapsed().Seconds()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(b.N*batch)/elapsed, "writes/s")
	b.ReportMetric(float64(reads.Load())/elapsed, "reads/s")
}
