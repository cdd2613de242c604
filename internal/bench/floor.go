package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	rawpebble "github.com/cockroachdb/pebble/v2"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/latency"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// Floor is what this machine can do at best with wail's own storage, driven
// in-process and closed loop with the bench's record sizes, partitions and
// fsync policy, but at the batch sizes that suit the storage rather than the
// bench's: the raw log append and a raw Pebble batch at LargeBatch, the LWW
// store write at LargeBatch, and the whole embedded pipeline (the work wail
// cannot avoid for a write: encode and append the intent, LWW store write,
// read the row back, encode and append the event) at each of PipelineBatches
// with each of PipelineWriters concurrent callers.
// The best pipeline rate is the floor wail is compared with: wail does all of
// that work and more (RPC, HLC, resolver bookkeeping), so it cannot beat it.
type Floor struct {
	Fsync           string  `json:"fsync"`
	Partitions      int32   `json:"partitions"`
	KeyBytes        int     `json:"key_bytes"`
	IntentBytes     int     `json:"intent_bytes"`
	ValueBytes      int     `json:"value_bytes"`
	SecondsEach     float64 `json:"seconds_each"`
	Dir             string  `json:"dir"`
	LargeBatch      int     `json:"large_batch"`
	Writers         int     `json:"writers"`          // concurrent callers of each raw measurement
	PipelineBatches []int   `json:"pipeline_batches"` // the batch sizes tried
	PipelineWriters []int   `json:"pipeline_writers"` // the concurrent callers tried
	// LogAppend: embedded log Append of LargeBatch intent-sized records;
	// PebbleBatch: a raw Pebble batch of LargeBatch row-sized Sets, committed
	// with the fsync policy (no version check); StoreApply: the Pebble
	// store's LWW Apply of LargeBatch mutations.
	LogAppend   FloorRate `json:"log_append"`
	PebbleBatch FloorRate `json:"pebble_batch"`
	StoreApply  FloorRate `json:"store_apply"`
	// Pipeline has one entry per PipelineBatches size and PipelineWriters
	// count; Best is the highest.
	Pipeline []PipelineRate `json:"pipeline"`
	Best     PipelineRate   `json:"pipeline_best"`
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

// PipelineRate is the whole pipeline at one batch size and concurrency.
type PipelineRate struct {
	Batch   int `json:"batch"`
	Writers int `json:"writers"`
	FloorRate
}

// FloorRatio is WailRate over each floor (0 when there is no wail rate).
type FloorRatio struct {
	LogAppend   float64 `json:"log_append"`
	PebbleBatch float64 `json:"pebble_batch"`
	StoreApply  float64 `json:"store_apply"`
	Pipeline    float64 `json:"pipeline"` // over Best: the number that matters
}

const (
	floorTable       = "bench_0"
	floorLargeBatch  = 1000
	floorWriters     = 4
	floorPebbleValue = 9 // the store's row header: version and flags
)

// floorPipelineBatches and floorPipelineWriters are what the pipeline
// floor tries: a pipeline call waits for three syncs in turn, so a few
// writers keep the disk busy, and more hide its latency when it is slow.
var (
	floorPipelineBatches = []int{100, 1000, 4000}
	floorPipelineWriters = []int{4, 16}
)

// floorRig holds what the floor measurements run on.
type floorRig struct {
	o       *Options
	log     *embedded.Log
	st      *pebble.Store
	raw     *rawpebble.DB
	sync    *rawpebble.WriteOptions
	intent  []byte // an encoded intent as the proxy would log it
	value   []byte
	version atomic.Uint64
}

var (
	floorIntentTopic = intent.Topic(floorTable)
	floorEventTopic  = eventbus.Topic(floorTable)
)

// runFloor measures the floor in a temporary directory and compares res's
// sustained rate with it.
func runFloor(ctx context.Context, o *Options, res *Result) (*Floor, error) {
	dir, err := os.MkdirTemp(o.DataDir, "wail-bench-floor-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := &Floor{Fsync: "on", Partitions: floorPartitions(o, res), KeyBytes: keyBytes, ValueBytes: o.ValueSize,
		SecondsEach: o.FloorDuration.Seconds(), Dir: dir, LargeBatch: floorLargeBatch, Writers: floorWriters,
		PipelineBatches: floorPipelineBatches, PipelineWriters: floorPipelineWriters}
	if o.NoSync {
		f.Fsync = "off"
	}
	rig, err := openRig(ctx, o, dir, f.Partitions)
	if err != nil {
		return nil, err
	}
	defer rig.close()
	f.IntentBytes = len(rig.intent)
	fmt.Fprintf(o.Out, "floor: %s each of raw log appends, raw Pebble batches and LWW store writes (batch %d, %d writers), then the whole pipeline at batches %v with %v writers (intent %d B, value %d B, fsync %s; %s)\n",
		o.FloorDuration, floorLargeBatch, floorWriters, floorPipelineBatches, floorPipelineWriters, f.IntentBytes, o.ValueSize, f.Fsync, res.Machine.GC)
	runs := []struct {
		dst *FloorRate
		op  func(context.Context, *rand.Rand) (int, error)
	}{
		{&f.LogAppend, rig.append(floorLargeBatch)},
		{&f.PebbleBatch, rig.pebbleBatch(floorLargeBatch)},
		{&f.StoreApply, rig.apply(floorLargeBatch)},
	}
	for _, r := range runs {
		if *r.dst, err = closedLoop(ctx, o.FloorDuration, floorWriters, o.Seed, r.op); err != nil {
			return f, err
		}
	}
	for _, b := range floorPipelineBatches {
		for _, w := range floorPipelineWriters {
			r, err := closedLoop(ctx, o.FloorDuration, w, o.Seed, rig.pipeline(b))
			if err != nil {
				return f, err
			}
			p := PipelineRate{Batch: b, Writers: w, FloorRate: r}
			f.Pipeline = append(f.Pipeline, p)
			if p.RecordsPerSec > f.Best.RecordsPerSec {
				f.Best = p
			}
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

func openRig(ctx context.Context, o *Options, dir string, partitions int32) (rig *floorRig, err error) {
	quiet := slog.New(slog.DiscardHandler)
	rig = &floorRig{o: o, value: make([]byte, o.ValueSize), sync: rawpebble.Sync}
	if o.NoSync {
		rig.sync = rawpebble.NoSync
	}
	defer func() {
		if err != nil {
			rig.close()
		}
	}()
	if rig.log, err = embedded.Open(filepath.Join(dir, "log"), embedded.Options{NoSync: o.NoSync, SyncFilesystem: o.SyncFilesystem, Logger: quiet}); err != nil {
		return nil, err
	}
	for _, topic := range []string{floorIntentTopic, floorEventTopic} {
		if err := rig.log.CreateTopic(ctx, topic, partitions, intentlog.TopicOptions{}); err != nil {
			return nil, err
		}
	}
	if rig.st, err = pebble.Open(filepath.Join(dir, "store"), pebble.Options{NoSync: o.NoSync, Logger: quiet}); err != nil {
		return nil, err
	}
	if err := rig.st.CreateTable(ctx, floorTable); err != nil {
		return nil, err
	}
	if rig.raw, err = rawpebble.Open(filepath.Join(dir, "raw"), &rawpebble.Options{Logger: quietPebble{}}); err != nil {
		return nil, err
	}
	v := hlc.At(time.Now())
	in := intent.Intent{Table: floorTable, Key: Key(0), Op: intent.Upsert, Version: v, CreatedAt: time.Now(),
		ID: "0-" + strconv.FormatUint(v, 10)}
	if rig.intent, err = in.Marshal(); err != nil {
		return nil, err
	}
	rig.version.Store(v)
	return rig, nil
}

func (r *floorRig) close() {
	if r.log != nil {
		_ = r.log.Close()
	}
	if r.st != nil {
		_ = r.st.Close()
	}
	if r.raw != nil {
		_ = r.raw.Close()
	}
}

func (r *floorRig) append(n int) func(context.Context, *rand.Rand) (int, error) {
	return func(ctx context.Context, rng *rand.Rand) (int, error) {
		recs := make([]*intentlog.Record, n)
		for i := range recs {
			recs[i] = &intentlog.Record{Key: Key(rng.IntN(r.o.Keys)), Value: r.intent}
		}
		return n, r.log.Append(ctx, floorIntentTopic, recs)
	}
}

func (r *floorRig) pebbleBatch(n int) func(context.Context, *rand.Rand) (int, error) {
	row := make([]byte, floorPebbleValue+len(r.value))
	return func(_ context.Context, rng *rand.Rand) (int, error) {
		b := r.raw.NewBatch()
		defer b.Close()
		for range n {
			if err := b.Set(Key(rng.IntN(r.o.Keys)), row, nil); err != nil {
				return 0, err
			}
		}
		return n, b.Commit(r.sync)
	}
}

func (r *floorRig) apply(n int) func(context.Context, *rand.Rand) (int, error) {
	return func(ctx context.Context, rng *rand.Rand) (int, error) {
		muts := make([]store.Mutation, n)
		for i := range muts {
			muts[i] = store.Mutation{Key: Key(rng.IntN(r.o.Keys)), Value: r.value, Version: r.version.Add(1)}
		}
		_, err := r.st.Apply(ctx, floorTable, muts)
		return n, err
	}
}

// pipeline is one batch through the embedded pipeline: encode n intents
// and append them, write the store, read every row back, encode the events
// and append them to the table's event topic.
func (r *floorRig) pipeline(n int) func(context.Context, *rand.Rand) (int, error) {
	return func(ctx context.Context, rng *rand.Rand) (int, error) {
		now := time.Now()
		recs := make([]*intentlog.Record, n)
		muts := make([]store.Mutation, n)
		for i := range n {
			key, v := Key(rng.IntN(r.o.Keys)), r.version.Add(1)
			in := intent.Intent{Table: floorTable, Key: key, Op: intent.Upsert, Version: v, CreatedAt: now,
				ID: "0-" + strconv.FormatUint(v, 10)}
			b, err := in.Marshal()
			if err != nil {
				return 0, err
			}
			recs[i] = &intentlog.Record{Key: key, Value: b}
			muts[i] = store.Mutation{Key: key, Value: r.value, Version: v}
		}
		if err := r.log.Append(ctx, floorIntentTopic, recs); err != nil {
			return 0, err
		}
		if _, err := r.st.Apply(ctx, floorTable, muts); err != nil {
			return 0, err
		}
		events := make([]*intentlog.Record, n)
		for i, m := range muts {
			row, found, err := r.st.Get(ctx, floorTable, m.Key, 0)
			if err != nil || !found {
				return 0, fmt.Errorf("read back %q: found %v: %w", m.Key, found, err)
			}
			e := intent.Event{Table: floorTable, Key: m.Key, Op: intent.Upsert, Version: row.Version, Value: row.Value,
				IntentAt: now, ResolvedAt: time.Now(), CoveredIntents: 1}
			if events[i], err = eventbus.Encode(&e); err != nil {
				return 0, err
			}
		}
		return n, r.log.Append(ctx, floorEventTopic, events)
	}
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

// compare sets WailRate from res (the confirmed maximum of --find-max,
// else its highest sustainable rate, else the writes/s of the last step)
// and the ratios.
func (f *Floor) compare(res *Result) {
	switch {
	case res.FindMax != nil && res.FindMax.Confirmed:
		f.WailRate, f.WailRateSource = res.FindMax.ConfirmedRate, fmt.Sprintf("find-max: confirmed maximum (--confirm %d)", res.FindMax.Confirm)
	case res.FindMax != nil && res.FindMax.Found:
		f.WailRate, f.WailRateSource = res.FindMax.MaxSustainableRate, "find-max: highest sustainable rate"
		if res.FindMax.Confirm > 0 {
			f.WailRateSource += " (not confirmed)"
		}
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
		LogAppend: ratio(f.LogAppend.RecordsPerSec), PebbleBatch: ratio(f.PebbleBatch.RecordsPerSec),
		StoreApply: ratio(f.StoreApply.RecordsPerSec), Pipeline: ratio(f.Best.RecordsPerSec),
	}
}

func (f *Floor) print(w io.Writer) {
	fmt.Fprintf(w, "\nfloor on this machine (fsync %s, %d partitions, key %d B, intent %d B, value %d B, %gs each)\n",
		f.Fsync, f.Partitions, f.KeyBytes, f.IntentBytes, f.ValueBytes, f.SecondsEach)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, r FloorRate, ratio float64) {
		rs := "-"
		if ratio > 0 {
			rs = fmt.Sprintf("%.3f", ratio)
		}
		fmt.Fprintf(tw, "  %s\t%10.0f records/s\tcall p50 %s p99 %s\twail/floor %s\n", name, r.RecordsPerSec,
			fmtMs(r.Call.P50, r.Call.Count), fmtMs(r.Call.P99, r.Call.Count), rs)
	}
	row(fmt.Sprintf("log append (embedded, batch %d, %d writers)", f.LargeBatch, f.Writers), f.LogAppend, f.Ratio.LogAppend)
	row(fmt.Sprintf("raw Pebble batch (%d, %d writers)", f.LargeBatch, f.Writers), f.PebbleBatch, f.Ratio.PebbleBatch)
	row(fmt.Sprintf("LWW store write (batch %d, %d writers)", f.LargeBatch, f.Writers), f.StoreApply, f.Ratio.StoreApply)
	for _, p := range f.Pipeline {
		ratio := 0.0
		if p.Batch == f.Best.Batch && p.Writers == f.Best.Writers {
			ratio = f.Ratio.Pipeline
		}
		row(fmt.Sprintf("pipeline (batch %d, %d writers)", p.Batch, p.Writers), p.FloorRate, ratio)
	}
	_ = tw.Flush()
	if f.WailRate > 0 {
		fmt.Fprintf(w, "wail: %.0f writes/s (%s) = %.3f of the pipeline floor (%.0f writes/s at batch %d, %d writers)\n",
			f.WailRate, f.WailRateSource, f.Ratio.Pipeline, f.Best.RecordsPerSec, f.Best.Batch, f.Best.Writers)
	}
}

// quietPebble drops the raw Pebble's log lines; Fatalf panics as Pebble
// expects.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
