// Package demo is wail's synthetic order workload with a live display: a
// few writers send batches of order upserts, status updates and deletes at a
// target rate, a subscriber matches the change events to the acknowledged
// writes, and once a second a line shows throughput, resolver lag and
// write-to-event latency; a summary ends the run.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"connectrpc.com/connect"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/latency"
)

// Config configures a demo run. The clients and Out are required.
type Config struct {
	Producer wailv1connect.ProducerServiceClient
	Admin    wailv1connect.AdminServiceClient
	Events   wailv1connect.EventServiceClient
	Out      io.Writer

	Table    string        // default "orders"; must exist
	Duration time.Duration // 0: until ctx ends
	Rate     int           // mutations per second over all writers (default 2000)
	Keys     int           // about how many orders are live (default 1000)
	Writers  int           // default 4
	MaxBatch int           // mutations per Write (default 50)
	// Terminal rewrites the status line in place instead of printing lines.
	Terminal    bool
	Tick        time.Duration // display interval (default 1s)
	SampleEvery time.Duration // sample events interval (default 5s)
	Drain       time.Duration // wait for events after writers stop (default 5s)
	Seed        uint64        // workload seed (0: random)
}

func (c Config) withDefaults() (Config, error) {
	if c.Producer == nil || c.Admin == nil || c.Events == nil || c.Out == nil {
		return c, errors.New("demo: clients and Out are required")
	}
	if c.Rate < 0 || c.Keys < 0 || c.Writers < 0 || c.MaxBatch < 0 || c.Duration < 0 {
		return c, errors.New("demo: negative setting")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Rate, 2000)
	def(&c.Keys, 1000)
	def(&c.Writers, 4)
	def(&c.MaxBatch, 50)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&c.Tick, time.Second)
	defDur(&c.SampleEvery, 5*time.Second)
	defDur(&c.Drain, 5*time.Second)
	if c.Table == "" {
		c.Table = "orders"
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return c, nil
}

// maxPending bounds the writes the matcher waits an event for; far above
// what the demo's rates leave pending.
const maxPending = 1 << 20

// demo is the state of one run.
type demo struct {
	cfg     Config
	gen     *Generator
	matcher *latency.Matcher
	stats   stats
	samples samples
}

// Run runs the workload until ctx ends or cfg.Duration passes, waits up to
// cfg.Drain for the remaining events, prints the summary on cfg.Out and
// returns it. It fails when the event stream cannot be opened or breaks.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	d := &demo{
		cfg:     cfg,
		gen:     NewGenerator(cfg.Table, cfg.Keys, cfg.Seed, nil),
		matcher: latency.NewMatcher(30*time.Second, maxPending),
	}
	// The subscription outlives ctx: after Ctrl-C it still drains. The
	// server answers Subscribe once the stream is live, so every write made
	// after it returns shows up on it.
	subCtx, stopSub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSub()
	stream, err := d.cfg.Events.Subscribe(subCtx, connect.NewRequest(&wailv1.SubscribeRequest{Table: d.cfg.Table, From: "latest"}))
	if err != nil {
		return Summary{}, fmt.Errorf("subscribe: %w", err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- d.receive(stream) }()
	return d.run(ctx, subDone)
}

// run drives writers, display and drain once the subscription is live.
func (d *demo) run(ctx context.Context, subDone <-chan error) (Summary, error) {
	start := time.Now()
	writeCtx, stopWrite := context.WithCancel(ctx)
	if d.cfg.Duration > 0 {
		writeCtx, stopWrite = context.WithTimeout(ctx, d.cfg.Duration)
	}
	defer stopWrite()
	dispCtx, stopDisp := context.WithCancel(context.WithoutCancel(ctx))
	dispDone := make(chan struct{})
	go func() { defer close(dispDone); d.display(dispCtx) }()

	var wg sync.WaitGroup
	perWriter := float64(d.cfg.Rate) / float64(d.cfg.Writers)
	for range d.cfg.Writers {
		wg.Go(func() { d.writer(writeCtx, perWriter) })
	}
	var subErr error
	select {
	case <-writeCtx.Done():
	case subErr = <-subDone:
		stopWrite()
	}
	wg.Wait()
	writing := time.Since(start)
	if subErr == nil {
		subErr = d.drain(subDone)
	}
	stopDisp()
	<-dispDone
	sum := d.summary(writing)
	sum.Print(d.cfg.Out)
	if subErr != nil {
		return sum, fmt.Errorf("event stream: %w", subErr)
	}
	return sum, nil
}

// receive feeds the events of the stream to the matcher until it ends.
func (d *demo) receive(stream *connect.ServerStreamForClient[wailv1.SubscribeResponse]) error {
	defer stream.Close()
	for stream.Receive() {
		msg := stream.Msg()
		ev := msg.GetEvent()
		if ev == nil {
			continue
		}
		d.matcher.Event(d.cfg.Table, ev.GetKey(), ev.GetVersion(), time.Now())
		d.stats.events.Add(1)
		d.samples.offer(msg)
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return errors.New("the server ended the stream")
}

// writer sends batches at perSec mutations per second until ctx ends.
func (d *demo) writer(ctx context.Context, perSec float64) {
	const pace = 25 * time.Millisecond
	t := time.NewTicker(pace)
	defer t.Stop()
	tokens, last := 0.0, time.Now()
	burst := max(perSec, float64(d.cfg.MaxBatch))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		tokens = min(tokens+now.Sub(last).Seconds()*perSec, burst)
		last = now
		for tokens >= 1 && ctx.Err() == nil {
			n := min(int(tokens), d.cfg.MaxBatch)
			d.send(ctx, n)
			tokens -= float64(n)
		}
	}
}

// send writes one batch; a batch in flight completes even when ctx ends.
func (d *demo) send(ctx context.Context, n int) {
	muts := d.gen.Next(n)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	sent := time.Now()
	resp, err := d.cfg.Producer.Write(rctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
	if err != nil {
		d.stats.fail(int64(n), err.Error())
		return
	}
	results := resp.Msg.GetResults()
	if len(results) != len(muts) {
		d.stats.fail(int64(n), fmt.Sprintf("%d results for %d mutations", len(results), len(muts)))
		return
	}
	for i, r := range results {
		if e := r.GetError(); e != nil {
			d.stats.fail(1, e.GetCode()+": "+e.GetMessage())
			continue
		}
		d.matcher.Acked(d.cfg.Table, muts[i].GetKey(), r.GetVersion(), sent, true)
		d.stats.writes.Add(1)
		if r.GetSuperseded() {
			d.stats.superseded.Add(1)
		}
	}
}

// drain waits until every acknowledged write is covered, cfg.Drain passes or
// the stream ends.
func (d *demo) drain(subDone <-chan error) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	timeout := time.After(d.cfg.Drain)
	for d.matcher.Pending() > 0 {
		select {
		case err := <-subDone:
			return err
		case <-timeout:
			return nil
		case <-t.C:
		}
	}
	return nil
}
