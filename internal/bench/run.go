package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/latency"
	"github.com/wail-cdc/wail/internal/server"
	"golang.org/x/sync/errgroup"
)

// Run runs the benchmark o describes: the load (a fixed-rate run or
// --find-max) and, when asked, the floor. It writes the table to o.Out, the
// JSON to o.JSON and the plot to o.PlotFile, and returns the result. When
// ctx ends it stops early and reports what it has (Result.Interrupted).
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	res := newResult(&o)
	// The bench owns its process: its collector runs as a server's would.
	res.Machine.GC = server.TuneMemory(config.Default().Memory, server.HostMemoryEnv())
	var err error
	if !o.FloorOnly {
		err = runLoad(ctx, &o, res)
	}
	if (o.Floor || o.FloorOnly) && err == nil && ctx.Err() == nil {
		var fl *Floor
		fl, err = runFloor(ctx, &o, res)
		res.Floor = fl
	}
	res.finish(ctx)
	if err != nil && len(res.Steps) == 0 && res.Floor == nil {
		return res, err // nothing was measured
	}
	if werr := res.write(&o); werr != nil {
		err = errors.Join(err, werr)
	}
	return res, err
}

// runLoad drives the target and fills res.Steps, res.FindMax and
// res.Samples.
func runLoad(ctx context.Context, o *Options, res *Result) (err error) {
	tgt, err := openTarget(ctx, o)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, tgt.closeBatcher(), tgt.stop()) }()
	res.Backend = tgt.backend
	s, err := newSession(ctx, o, tgt, res)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while preloading or subscribing
		}
		return err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if o.FindMax {
		steps, fm := findMax(s.ctx, o, s.runStep)
		res.Steps, res.FindMax = steps, &fm
	} else {
		res.Steps = []Step{s.runStep(s.ctx, 0, o.Rate, o.Duration)}
	}
	return nil
}

// session is one connection to the target: its tables, subscriptions,
// sampler and the state the steps share.
type session struct {
	o       *Options
	tgt     *target
	res     *Result
	tables  []string
	work    *Workload
	matcher *latency.Matcher
	rec     *recorder
	scr     *scraper
	rngs    []*rand.Rand
	start   time.Time // t=0 of the samples

	ctx    context.Context // ends on interruption or a broken stream
	cancel context.CancelFunc
	// bg carries the subscriptions and the sampler: they outlive ctx (to
	// drain and report) until close.
	bg     context.Context
	stopBg context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	phase    phase
	samples  []Sample
	progress *progress
	failure  error
}

// phase is what the sampler labels its samples with.
type phase struct {
	step     int
	rate     float64
	from     time.Time // end of the warm-up
	end      time.Time // end of the measured period (zero while it lasts)
	finished bool      // the step is drained
}

func newSession(ctx context.Context, o *Options, tgt *target, res *Result) (_ *session, err error) {
	s := &session{o: o, tgt: tgt, res: res, tables: tableNames(o.Tables), rec: newRecorder(),
		matcher: latency.NewMatcher(30*time.Second, 4<<20), progress: newProgress(o.Out, o.Terminal)}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.bg, s.stopBg = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			s.stopBg()
			s.wg.Wait()
			s.cancel()
		}
	}()
	parts, err := tgt.createTables(ctx, s.tables, o.Partitions)
	if err != nil {
		return nil, err
	}
	s.res.Backend.Partitions, s.res.Backend.Tables = parts, len(s.tables)
	fmt.Fprintf(o.Out, "wail bench: %s; this process: %s\n", s.res.Backend, s.res.Machine.GC)
	keys, err := NewKeySampler(o)
	if err != nil {
		return nil, err
	}
	s.work = NewWorkload(o, s.tables, keys)
	for i := range o.Concurrency {
		s.rngs = append(s.rngs, rand.New(rand.NewPCG(o.Seed, uint64(i)+2)))
	}
	s.scr = newScraper(tgt.control, tgt.base, s.tables)
	if o.Preload {
		if err := s.preload(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.subscribe(); err != nil {
		return nil, err
	}
	s.start = time.Now()
	s.wg.Go(func() { s.sampleLoop(s.bg) })
	return s, nil
}

// probeKey is written to every table after subscribing: its event proves
// that the stream is live. Bench keys never collide with it.
var probeKey = []byte("wail-bench-probe")

// subscribe opens one event stream per table from "latest" and returns
// once each has delivered the event of a probe write, so every bench write
// is seen; the streams feed the matcher.
func (s *session) subscribe() error {
	live := make(map[string]chan struct{}, len(s.tables))
	for _, table := range s.tables {
		stream, err := s.tgt.events.CallServerStream(s.bg, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: "latest", MaxBatchEvents: s.o.eventBatch()}))
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", table, err)
		}
		ch := make(chan struct{})
		live[table] = ch
		s.wg.Go(func() {
			err := s.receive(table, stream, ch)
			if s.bg.Err() == nil {
				s.fail(fmt.Errorf("event stream of %s: %w", table, err))
			}
		})
	}
	for _, table := range s.tables {
		if err := s.probe(table, live[table]); err != nil {
			return err
		}
	}
	return nil
}

// probe writes the probe key of table until its event shows up on the
// stream (the stream may have started after the first probe was published).
func (s *session) probe(table string, live <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_, err := s.tgt.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: probeKey}))
		cancel()
		if err != nil {
			return fmt.Errorf("probe write to %s: %w", table, err)
		}
		select {
		case <-live:
			return nil
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("the event stream of %s did not deliver a probe event within 30s", table)
}

// receive feeds the events of table's stream to the matcher until it
// ends; the first probe event closes live.
func (s *session) receive(table string, stream *connect.ServerStreamForClient[rawMessage], live chan struct{}) error {
	defer stream.Close()
	var wrong error
	var now time.Time // the message's arrival
	event := func(ev *eventFields) {
		if string(ev.table) != table {
			wrong = fmt.Errorf("an event of table %q on the stream of %q", ev.table, table)
			return
		}
		s.event(table, ev, now, &live)
	}
	for stream.Receive() {
		now = time.Now()
		if err := eachEvent(stream.Msg().b, event); err != nil {
			return err
		}
		if wrong != nil {
			return wrong
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return errors.New("the server ended the stream")
}

// event records one event of table that arrived at now; the first probe
// event closes *live.
func (s *session) event(table string, ev *eventFields, now time.Time, live *chan struct{}) {
	if bytes.Equal(ev.key, probeKey) {
		if *live != nil {
			close(*live)
			*live = nil
		}
		return
	}
	s.matcher.Event(table, ev.key, ev.version, now)
	var resolved time.Time
	if ev.resolvedUs > 0 {
		resolved = time.UnixMicro(ev.resolvedUs)
	}
	s.rec.event(now, resolved)
}

// fail stops the run with err (the first one wins).
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = err
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *session) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

// close stops the sampler and the subscriptions and hands the samples to
// the result. It returns what broke the run, if anything.
func (s *session) close() error {
	s.stopBg()
	s.wg.Wait()
	s.progress.done()
	s.mu.Lock()
	s.res.Samples = s.samples
	s.mu.Unlock()
	s.cancel()
	return s.failed()
}

// preload writes every key of the key space once, then waits until the
// resolver has published an event for all of them.
func (s *session) preload(ctx context.Context) error {
	const batch, workers = 500, 8
	total := s.o.Keys * len(s.tables)
	fmt.Fprintf(s.o.Out, "preloading %d keys x %d table(s)...\n", s.o.Keys, len(s.tables))
	before, _ := s.scr.scrape(ctx)
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan []*wailv1.Mutation)
	for range workers {
		g.Go(func() error {
			for muts := range jobs {
				if _, err := s.tgt.producer.Write(gctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
					return fmt.Errorf("preload: %w", err)
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		val := s.work.values[:s.o.ValueSize]
		for _, table := range s.tables {
			for lo := 0; lo < s.o.Keys; lo += batch {
				muts := make([]*wailv1.Mutation, 0, batch)
				for i := lo; i < min(lo+batch, s.o.Keys); i++ {
					muts = append(muts, &wailv1.Mutation{Table: table, Key: Key(i), Op: wailv1.Op_OP_UPSERT, Value: val})
				}
				select {
				case jobs <- muts:
				case <-gctx.Done():
					return nil
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil || ctx.Err() != nil {
		return err
	}
	return s.awaitCovered(ctx, before, float64(total), time.Minute)
}

// awaitCovered waits until the resolver covered n more intents than in
// before, or timeout passes.
func (s *session) awaitCovered(ctx context.Context, before serverCounters, n float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := s.scr.scrape(ctx)
		if err == nil && c.Covered-before.Covered >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(s.o.Out, "preload: the resolver did not cover every preloaded write within %s; going on\n", timeout)
	return nil
}
