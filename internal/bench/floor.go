package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/latency"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// Floor is the raw I/O floor of this machine: the embedded log and the
// Pebble store driven directly, closed loop, with the bench's record sizes,
// batch size, partitions, concurrency and fsync policy.
type Floor struct {
	Fsync           string  `json:"fsync"`
	Partitions      int32   `json:"partitions"`
	Concurrency     int     `json:"concurrency"`
	ReadConcurrency int     `json:"read_concurrency"`
	Batch           int     `json:"batch"`
	KeyBytes        int     `json:"key_bytes"`
	IntentBytes     int     `json:"intent_bytes"`
	ValueBytes      int     `json:"value_bytes"`
	SecondsEach     float64 `json:"seconds_each"`
	Dir             string  `json:"dir"`
	// LogAppend: Append of Batch intent-sized records; StoreApply: Apply
	// of Batch mutations; AppendThenApply: both in sequence per batch (the
	// I/O of wail's write path); StoreGet: point reads with the resolver's
	// read concurrency.
	LogAppend       FloorRate `json:"log_append"`
	StoreApply      FloorRate `json:"store_apply"`
	AppendThenApply FloorRate `json:"append_then_apply"`
	StoreGet        FloorRate `json:"store_get"`
	// WailRate is wail's sustained rate the ratios compare (writes/s),
	// WailRateSource where it comes from.
	WailRate       float64    `json:"wail_rate"`
	WailRateSource string     `json:"wail_rate_source"`
	Ratio          FloorRatio `json:"ratio"`
}

// FloorRate is one floor measurement.
type FloorRate struct {
	RecordsPerSec float64             `json:"records_per_sec"`
	CallsPerSec   float64             `json:"calls_per_sec"`
	Call          latency.Percentiles `json:"call_latency"`
}

// FloorRatio is WailRate over each floor (0 when there is no wail rate).
type FloorRatio struct {
	LogAppend       float64 `json:"log_append"`
	StoreApply      float64 `json:"store_apply"`
	MinOfBoth       float64 `json:"min_of_both"`
	AppendThenApply float64 `json:"append_then_apply"`
}

// floorRig holds what the floor measurements run on.
type floorRig struct {
	o       *Options
	log     *embedded.Log
	st      *pebble.Store
	intent  []byte // an encoded intent as the proxy would log it
	value   []byte
	version atomic.Uint64
}

const floorTopic, floorTable = "floor", "bench_0"

// runFloor measures the floor in a temporary directory and compares res's
// sustained rate with it.
func runFloor(ctx context.Context, o *Options, res *Result) (*Floor, error) {
	parent := o.DataDir
	dir, err := os.MkdirTemp(parent, "wail-bench-floor-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := &Floor{Fsync: "on", Partitions: floorPartitions(o, res), Concurrency: o.Concurrency,
		ReadConcurrency: config.Default().Resolver.Concurrency, Batch: o.Batch, KeyBytes: keyBytes,
		ValueBytes: o.ValueSize, SecondsEach: o.FloorDuration.Seconds(), Dir: dir}
	if o.NoSync {
		f.Fsync = "off"
	}
	rig, err := openRig(ctx, o, dir, f.Partitions)
	if err != nil {
		return nil, err
	}
	defer rig.close()
	f.IntentBytes = len(rig.intent)
	fmt.Fprintf(o.Out, "floor: %s each of raw log appends, store writes, both in sequence, store reads (%d writers, batch %d, intent %d B, value %d B, fsync %s)\n",
		o.FloorDuration, o.Concurrency, o.Batch, f.IntentBytes, o.ValueSize, f.Fsync)
	runs := []struct {
		dst  *FloorRate
		conc int
		op   func(context.Context, *rand.Rand) (int, error)
	}{
		{&f.LogAppend, o.Concurrency, rig.append},
		{&f.StoreApply, o.Concurrency, rig.apply},
		{&f.AppendThenApply, o.Concurrency, rig.appendThenApply},
		{&f.StoreGet, f.ReadConcurrency, rig.get},
	}
	for _, r := range runs {
		if *r.dst, err = closedLoop(ctx, o.FloorDuration, r.conc, o.Seed, r.op); err != nil {
			return f, err
		}
	}
	f.compare(res)
	return f, nil
}

func floorPartitions(o *Options, res *Result) int32 {
	switch {
	case res.Backend.Partitions > 0:
		return res.Backend.Partitions
	case o.Partitions > 0:
		return o.Partitions
	}
	return config.Default().Defaults.Partitions
}

func openRig(ctx context.Context, o *Options, dir string, partitions int32) (*floorRig, error) {
	quiet := slog.New(slog.DiscardHandler)
	l, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{NoSync: o.NoSync, Logger: quiet})
	if err != nil {
		return nil, err
	}
	if err := l.CreateTopic(ctx, floorTopic, partitions, intentlog.TopicOptions{}); err != nil {
		_ = l.Close()
		return nil, err
	}
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{NoSync: o.NoSync, Logger: quiet})
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	rig := &floorRig{o: o, log: l, st: st, value: make([]byte, o.ValueSize)}
	if err := st.CreateTable(ctx, floorTable); err != nil {
		rig.close()
		return nil, err
	}
	v := hlc.At(time.Now())
	in := intent.Intent{Table: floorTable, Key: Key(0), Op: intent.Upsert, Version: v, CreatedAt: time.Now(),
		ID: "0-" + strconv.FormatUint(v, 10)}
	if rig.intent, err = in.Marshal(); err != nil {
		rig.close()
		return nil, err
	}
	rig.version.Store(v)
	return rig, nil
}

func (r *floorRig) close() {
	_ = r.log.Close()
	_ = r.st.Close()
}

func (r *floorRig) append(ctx context.Context, rng *rand.Rand) (int, error) {
	recs := make([]*intentlog.Record, r.o.Batch)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: Key(rng.IntN(r.o.Keys)), Value: r.intent}
	}
	return len(recs), r.log.Append(ctx, floorTopic, recs)
}

func (r *floorRig) apply(ctx context.Context, rng *rand.Rand) (int, error) {
	muts := make([]store.Mutation, r.o.Batch)
	for i := range muts {
		muts[i] = store.Mutation{Key: Key(rng.IntN(r.o.Keys)), Value: r.value, Version: r.version.Add(1)}
	}
	_, err := r.st.Apply(ctx, floorTable, muts)
	return len(muts), err
}

func (r *floorRig) appendThenApply(ctx context.Context, rng *rand.Rand) (int, error) {
	if _, err := r.append(ctx, rng); err != nil {
		return 0, err
	}
	return r.apply(ctx, rng)
}

func (r *floorRig) get(ctx context.Context, rng *rand.Rand) (int, error) {
	_, _, err := r.st.Get(ctx, floorTable, Key(rng.IntN(r.o.Keys)), 0)
	return 1, err
}

// closedLoop runs op from conc goroutines, each calling it again as soon as
// it returns, for d; it returns the records and calls per second and the
// call latencies.
func closedLoop(ctx context.Context, d time.Duration, conc int, seed uint64, op func(context.Context, *rand.Rand) (int, error)) (FloorRate, error) {
	var (
		mu      sync.Mutex
		hist    = latency.NewHistogram()
		records atomic.Int64
		firstEr error
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)+1000))
			h := latency.NewHistogram()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx, rng)
				if err != nil {
					mu.Lock()
					firstEr = err
					mu.Unlock()
					return
				}
				latency.Record(h, time.Since(t0))
				records.Add(int64(n))
			}
			mu.Lock()
			hist.Merge(h)
			mu.Unlock()
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return floorRate(records.Load(), hist, secs), firstEr
}

func floorRate(records int64, h *hdrhistogram.Histogram, secs float64) FloorRate {
	return FloorRate{RecordsPerSec: float64(records) / secs, CallsPerSec: float64(h.TotalCount()) / secs, Call: latency.Summarize(h)}
}

// compare sets WailRate from res (the highest sustainable rate of
// --find-max, else the writes/s of the last step) and the ratios.
func (f *Floor) compare(res *Result) {
	switch {
	case res.FindMax != nil && res.FindMax.Found:
		f.WailRate, f.WailRateSource = res.FindMax.MaxSustainableRate, "find-max: highest sustainable rate"
	case len(res.Steps) > 0:
		last := res.Steps[len(res.Steps)-1]
		f.WailRate, f.WailRateSource = last.WritesPerSec, fmt.Sprintf("writes/s of the run at %.0f/s (not a maximum: use --find-max)", last.TargetRate)
	default:
		f.WailRateSource = "none (floor only)"
		return
	}
	ratio := func(floor float64) float64 {
		if floor <= 0 {
			return 0
		}
		return f.WailRate / floor
	}
	f.Ratio = FloorRatio{
		LogAppend: ratio(f.LogAppend.RecordsPerSec), StoreApply: ratio(f.StoreApply.RecordsPerSec),
		MinOfBoth:       ratio(min(f.LogAppend.RecordsPerSec, f.StoreApply.RecordsPerSec)),
		AppendThenApply: ratio(f.AppendThenApply.RecordsPerSec),
	}
}
