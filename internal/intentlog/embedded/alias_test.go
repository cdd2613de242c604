package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestReadStopsAtDamage: a read that meets a damaged batch after
// good ones returns exactly the good records, its Position is right after
// them, and the next Next fails at the damaged batch (also when the read
// began inside its first batch).
func TestReadStopsAtDamage(t *testing.T) {
	for _, from := range []int64{0, 1, 3, 4} {
		t.Run(fmt.Sprint(from), func(t *testing.T) {
			fsys := vfs.NewMem()
			l, _, all := craftLog(t, fsys, Options{IndexIntervalBytes: 1 << 30}, 0, []int{3, 3, 3}, []int{3})
			noErr(t, l.Close())
			path := segmentPath(craftedDir, 0, logExt)
			data := readFile(t, fsys, path)
			hs := batchesOf(t, fsys, path)
			third := hs[0].size + hs[1].size
			data[third+40] ^= 0x10 // a record byte of the third batch
			writeFile(t, fsys, path, data)
			l = openLog(t, "/log", Options{FS: fsys, IndexIntervalBytes: 1 << 30})
			defer l.Close()
			r, err := l.NewReader(testTopic, 0, from)
			noErr(t, err)
			defer r.Close()
			recs, err := r.Next(context.Background())
			noErr(t, err)
			sameRecords(t, "before the damage", recs, all[from:6])
			if r.Position() != 6 {
				t.Fatalf("Position %d after %d records from %d, want 6", r.Position(), len(recs), from)
			}
			if _, err := r.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "crc mismatch") {
				t.Fatalf("Next at the damaged batch: %v, want a crc mismatch", err)
			}
			if r.Position() != 6 {
				t.Fatalf("Position %d after the failed Next, want 6", r.Position())
			}
		})
	}
}

// TestReadRestIsolated: a caller that appends to and overwrites what
// a Next returned does not change what the following Nexts return (the
// rest of the batch shares the result's array).
func TestReadRestIsolated(t *testing.T) {
	l, _, all := craftLog(t, nil, Options{}, 0, []int{2500}, []int{7})
	r, err := l.NewReader(testTopic, 0, 10)
	noErr(t, err)
	defer r.Close()
	var got []intentlog.Record
	for r.Position() < int64(len(all)) {
		recs, err := r.Next(context.Background())
		noErr(t, err)
		got = append(got, recs...)
		for i := range recs {
			recs[i].Key = []byte("overwritten")
		}
		_ = append(recs, intentlog.Record{Key: []byte("appended")}, intentlog.Record{Key: []byte("appended")})
	}
	// got holds copies of the records taken before the caller's writes.
	if len(got) != len(all)-10 {
		t.Fatalf("%d records, want %d", len(got), len(all)-10)
	}
	for i, w := range all[10:] {
		if string(got[i].Key) != string(w.Key) || got[i].Offset != w.Offset {
			t.Fatalf("record %d = %q@%d, want %q@%d", i, got[i].Key, got[i].Offset, w.Key, w.Offset)
		}
	}
}

// TestDecodeIntoStaleRandom: decoding random batches (random header counts,
// keys, orders) into a destination whose room held records with headers
// gives exactly what decoding into nil gives, and each record's headers
// have no room to grow into another's.
func TestDecodeIntoStaleRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"v", "op", "id", "trace", ""}
	ts := time.UnixMicro(1_700_000_000_000_000)
	for iter := range 3000 {
		n := 1 + rng.IntN(12)
		recs := make([]intentlog.Record, n)
		for i := range recs {
			recs[i] = intentlog.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"), Timestamp: ts}
			for range rng.IntN(5) {
				var v []byte
				if rng.IntN(3) > 0 {
					v = fmt.Appendf(nil, "%d", rng.IntN(100))
				}
				recs[i].Headers = append(recs[i].Headers, intentlog.Header{Key: keys[rng.IntN(len(keys))], Value: v})
			}
		}
		b := encodeBatch(nil, 5, ts.UnixMicro(), recs)
		_, fresh, err := decodeBatch(nil, b)
		noErr(t, err)
		stale := intentlog.Record{Key: []byte("old"), RouteKey: []byte("r"), Partition: 9, Offset: 99,
			Headers: []intentlog.Header{{Key: "zz", Value: []byte("zz")}}}
		had := rng.IntN(3)
		dst := make([]intentlog.Record, had, had+n+rng.IntN(3))
		for range cap(dst) - had {
			dst = append(dst, stale)
		}
		dst = dst[:had]
		_, again, err := decodeBatch(dst, b)
		noErr(t, err)
		if !reflect.DeepEqual(again[had:], fresh) {
			t.Fatalf("iteration %d: into stale room %#v, into nil %#v", iter, again[had:], fresh)
		}
		for i := range fresh {
			if !reflect.DeepEqual(fresh[i].Headers, nilIfEmpty(recs[i].Headers)) {
				t.Fatalf("iteration %d record %d: headers %#v, want %#v", iter, i, fresh[i].Headers, recs[i].Headers)
			}
			if cap(fresh[i].Headers) != len(fresh[i].Headers) {
				t.Fatalf("iteration %d record %d: headers have room %d for %d", iter, i, cap(fresh[i].Headers), len(fresh[i].Headers))
			}
		}
		// Appending to one record's headers leaves the next one's alone.
		if n > 1 {
			next := append([]intentlog.Header(nil), fresh[1].Headers...)
			fresh[0].Headers = append(fresh[0].Headers, intentlog.Header{Key: "added"})
			if !reflect.DeepEqual(fresh[1].Headers, nilIfEmpty(next)) {
				t.Fatalf("iteration %d: appending to record 0's headers changed record 1's", iter)
			}
		}
	}
}

func nilIfEmpty(h []intentlog.Header) []intentlog.Header {
	if len(h) == 0 {
		return nil
	}
	return h
}

// TestAppendPooledBodiesStress: concurrent Appends over four partitions,
// some cancelled while queued, one partition breaking midway (Appends
// whose other parts were queued then fail): every record stored is the
// one appended (a body handed to another Append while a part of it was
// still queued would store another Append's bytes).
func TestAppendPooledBodiesStress(t *testing.T) {
	var writes atomic.Int64
	fsys := &hookFS{FS: vfs.NewMem(), hook: func(op vfs.Op, name string, _ int64, _ int) error {
		if op != vfs.OpWrite || !strings.HasSuffix(name, logExt) {
			return nil
		}
		if writes.Add(1)%7 == 0 {
			runtime.Gosched() // let parts queue up meanwhile
		}
		if strings.Contains(name, "/t/3/") && writes.Load() > 3000 {
			return errors.New("injected I/O error")
		}
		return nil
	}}
	l := openLog(t, "/log", Options{FS: fsys, Logger: slog.New(slog.DiscardHandler)})
	defer l.Close()
	createTestTopic(t, l, 4, intentlog.TopicOptions{})
	value := func(key []byte) []byte { return bytes.Repeat(append([]byte("value of "), key...), 3) }
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 150 {
				recs := make([]*intentlog.Record, 1+rng.IntN(30))
				for j := range recs {
					k := fmt.Appendf(nil, "g%d-a%d-r%d", g, i, j)
					recs[j] = &intentlog.Record{Key: k, Value: value(k)}
				}
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancel()
				}
				if err := l.Append(ctx, testTopic, recs); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	t.Logf("%d Appends acknowledged, %d failed", ok.Load(), failed.Load())
	total := 0
	for p := range int32(4) {
		for _, rec := range readAll(t, l, p) {
			if !bytes.Equal(rec.Value, value(rec.Key)) {
				t.Fatalf("partition %d offset %d: key %q with value %q", p, rec.Offset, rec.Key, rec.Value)
			}
			total++
		}
	}
	t.Logf("%d records checked", total)
}
