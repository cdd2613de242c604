package cassandra

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

// openBench: at most 16 keys of a batch at once, so that seeding 1000-key
// batches does not time out on a busy machine.
func openBench(b *testing.B) store.Store {
	opts := testOptions(b)
	opts.InFlight = 16
	return openTest(b, opts)
}

func BenchmarkApply(b *testing.B) { storetest.BenchApply(b, openBench) }

func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, openBench) }

// BenchmarkUpdate compares the store's write of a key that exists (a read
// of its version at LOCAL_QUORUM, then INSERT ... USING TIMESTAMP) with
// what a lightweight transaction would cost for the same last-writer-wins
// update (UPDATE ... IF version < ?, Paxos), 16 writers, 1000 keys. Writes
// that fail (timeouts) are counted, not fatal.
func BenchmarkUpdate(b *testing.B) {
	const nkeys = 1000
	s := openTest(b, testOptions(b))
	if err := s.CreateTable(b.Context(), "upd"); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	var seed []store.Mutation
	for i := range nkeys {
		seed = append(seed, store.Mutation{Key: binary.BigEndian.AppendUint64(nil, uint64(i)), Value: value, Version: 1})
	}
	for i := 0; i < nkeys; i += 100 {
		var err error
		for try := 0; try < 3 && (try == 0 || err != nil); try++ { // idempotent: a timeout is retried
			_, err = s.Apply(b.Context(), "upd", seed[i:i+100])
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	var clock atomic.Uint64
	clock.Store(1)
	for _, mode := range []string{"read+insert", "lwt"} {
		b.Run(mode, func(b *testing.B) {
			var failed atomic.Int64
			b.SetParallelism(8) // 16 writers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 0))
				for pb.Next() {
					key := binary.BigEndian.AppendUint64(nil, uint64(r.IntN(nkeys)))
					v := clock.Add(1)
					var err error
					if mode == "lwt" {
						q := fmt.Sprintf("UPDATE %s.wail_upd SET value = ?, version = ?, deleted = false WHERE key = ? IF version < ?", s.ks)
						_, err = s.session.Query(q, value, int64(v), key, int64(v)).Consistency(gocql.LocalQuorum).
							SerialConsistency(gocql.LocalSerial).ScanCAS()
					} else {
						_, err = s.Apply(b.Context(), "upd", []store.Mutation{{Key: key, Value: value, Version: v}})
					}
					if err != nil { // timeouts on a loaded machine are part of the result
						failed.Add(1)
					}
				}
			})
			if failed.Load() == int64(b.N) {
				b.Fatalf("%s: every write failed", mode)
			}
			b.ReportMetric(float64(int64(b.N)-failed.Load())/b.Elapsed().Seconds(), "ok/s")
			b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
		})
	}
}
