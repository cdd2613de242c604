package versus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5/pgxpool"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/bench"
	"github.com/wail-cdc/wail/internal/latency"
)

// Names of the process trees whose usage is recorded.
const (
	procPipeline = "pipeline"
	procPG       = "postgres"
	procReplica  = "postgres_replica"
	procKafka    = "kafka"
	procLoad     = "loadgen"
)

// Run runs every pipeline of o in turn, then writes the report, the JSON
// and the plot.
func Run(ctx context.Context, o *Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	topics, err := newTopicAdmin(o.Brokers)
	if err != nil {
		return nil, err
	}
	defer topics.close()
	pcfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := admin.Ping(ctx); err != nil {
		return nil, fmt.Errorf("postgres %s: %w", pcfg.ConnConfig.Host, err)
	}
	res := &Result{StartedAt: time.Now().UTC(), Machine: machine(), Workload: workloadReport(o)}
	if err := admin.QueryRow(ctx, `SELECT current_setting('wal_level') || ', max_wal_senders ' || current_setting('max_wal_senders')
		|| ', max_replication_slots ' || current_setting('max_replication_slots') || ', synchronous_commit ' || current_setting('synchronous_commit')
		|| ', shared_buffers ' || current_setting('shared_buffers') || ', server ' || current_setting('server_version')`).Scan(&res.PGSettings); err != nil {
		return nil, err
	}
	smp := NewSampler()
	smp.WatchAlone(procLoad, os.Getpid())
	for name, file := range sharedPidFiles(o) {
		if _, err := readPidFile(file); err != nil {
			fmt.Fprintf(o.Out, "note: no CPU for %s: %v\n", name, err)
		}
	}
	for _, name := range o.Pipelines {
		if ctx.Err() != nil {
			break
		}
		pr := runPipeline(ctx, o, name, admin, topics, smp)
		pr.SharedRestarts = smp.restarts
		res.Pipelines = append(res.Pipelines, pr)
		if pr.Error != "" {
			fmt.Fprintf(o.Out, "%s: %s\n", name, pr.Error)
		}
	}
	res.Machine.LoadAvgEnd = loadAvg()
	writeReport(o.Out, res)
	var errs []error
	if o.JSONFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(o.JSONFile, append(b, '\n'), 0o644)
		}
		errs = append(errs, err)
	}
	if o.PlotFile != "" {
		f, err := os.Create(o.PlotFile)
		if err == nil {
			err = errors.Join(writePlot(f, res), f.Close())
		}
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// session is one pipeline's run.
type session struct {
	o        *Options
	p        pipeline
	table    string
	matcher  *latency.Matcher
	cons     *consumer
	smp      *Sampler
	work     *bench.Workload
	writeIDs atomic.Uint64
}

func runPipeline(ctx context.Context, o *Options, name string, admin *pgxpool.Pool, topics *topicAdmin, smp *Sampler) PipelineResult {
	pr := PipelineResult{Name: name}
	table := fmt.Sprintf("vs_%s_%d", name, time.Now().Unix())
	fmt.Fprintf(o.Out, "== %s: starting (table %s)\n", name, table)
	var p pipeline
	var err error
	started := time.Now()
	if name == PipeWail {
		p, err = startWail(ctx, o, table, admin, topics)
	} else {
		p, err = startDebezium(ctx, o, table, admin, topics)
	}
	if err != nil {
		pr.Error = err.Error()
		return pr
	}
	cleanup := context.WithoutCancel(ctx)
	defer func() {
		if err := p.Close(cleanup); err != nil {
			fmt.Fprintf(o.Out, "%s: cleanup: %v\n", name, err)
			pr.CleanupError = err.Error()
		}
	}()
	pr.Settings = p.Settings()
	smp.Watch(procPipeline, p.PID())
	defer smp.Forget(procPipeline)
	keys, err := bench.NewKeySampler(&o.Load)
	if err != nil {
		pr.Error = err.Error()
		return pr
	}
	s := &session{o: o, p: p, table: table, smp: smp, matcher: latency.NewMatcher(2*time.Minute, 4_000_000),
		work: bench.NewWorkload(&o.Load, []string{table}, keys)}
	if s.cons, err = newConsumer(o.Brokers, p.Topic(), table, p.Decode(), s.matcher); err != nil {
		pr.Error = err.Error()
		return pr
	}
	defer s.cons.close()
	if err := s.awaitFirstEvent(ctx, 120*time.Second); err != nil {
		pr.Error = err.Error()
		return pr
	}
	pr.StartupSeconds = time.Since(started).Seconds()
	if err := s.preload(ctx); err != nil {
		pr.Error = err.Error()
		return pr
	}
	fmt.Fprintf(o.Out, "== %s: ready after %.1fs, %d keys preloaded\n", name, pr.StartupSeconds, o.Load.Keys)
	// Settle: one unrecorded step at the start rate, so that neither a
	// JIT (Debezium's JVM) nor cold caches and connection pools count.
	settle := s.runStep(ctx, o.StartRate)
	fmt.Fprintln(o.Out, stepLine(name+" (settling, not recorded)", settle))
	s.findMax(ctx, &pr)
	if u, ok := smp.Take()[procPipeline]; ok {
		pr.PeakHWMMB = u.HWMMB
	}
	pr.DecodeErrors = s.cons.decodeErrs.Load()
	if e := s.cons.firstErr.Load(); e != nil {
		pr.FirstDecodeError = *e
	}
	return pr
}

// stamp copies the workload's values (windows of a shared buffer) and puts
// a fresh write id in each.
func (s *session) stamp(muts []*wailv1.Mutation) {
	for _, m := range muts {
		if m.GetOp() != wailv1.Op_OP_UPSERT {
			continue
		}
		v := make([]byte, len(m.Value))
		copy(v, m.Value)
		putWriteID(v, s.writeIDs.Add(1))
		m.Value = v
	}
}

// write sends one batch and tracks its writes; it returns the writes
// acknowledged, errors by kind and writes with no event due.
func (s *session) write(ctx context.Context, muts []*wailv1.Mutation, intended time.Time, measured bool) (acked int, errKinds map[string]int, noEvent int) {
	s.stamp(muts)
	wctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	defer cancel()
	acks, err := s.p.Write(wctx, muts)
	if err != nil {
		return 0, map[string]int{errKind(err): len(muts)}, 0
	}
	for i, a := range acks {
		switch {
		case a.err != "":
			if errKinds == nil {
				errKinds = map[string]int{}
			}
			errKinds[a.err]++
		case a.noEvent:
			acked++
			noEvent++
		default:
			acked++
			s.matcher.Acked(s.table, muts[i].GetKey(), a.token, intended, measured)
		}
	}
	return acked, errKinds, noEvent
}

func errKind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	msg := err.Error()
	if i := strings.IndexAny(msg, ":("); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// awaitFirstEvent writes a canary until its event arrives: the pipeline
// streams end to end.
func (s *session) awaitFirstEvent(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	val := make([]byte, s.o.Load.ValueSize)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		m := &wailv1.Mutation{Table: s.table, Key: []byte("canary"), Op: wailv1.Op_OP_UPSERT, Value: val}
		if acked, _, _ := s.write(ctx, []*wailv1.Mutation{m}, time.Now(), false); acked == 1 {
			if s.waitDrained(ctx, 5*time.Second) {
				return nil
			}
		} else {
			time.Sleep(time.Second)
		}
	}
	return fmt.Errorf("%s: no event on %s within %s (decode errors: %d)", s.p.Name(), s.p.Topic(), limit, s.cons.decodeErrs.Load())
}

// waitDrained waits until every tracked write was delivered.
func (s *session) waitDrained(ctx context.Context, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for s.matcher.Pending() > 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// preload writes every key of the key space once, closed loop, and waits
// for the events.
func (s *session) preload(ctx context.Context) error {
	b := s.o.Load.Batch
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	val := make([]byte, s.o.Load.ValueSize)
	for range s.o.Load.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				from := int(next.Add(int64(b))) - b
				if from >= s.o.Load.Keys {
					return
				}
				var muts []*wailv1.Mutation
				for i := from; i < min(from+b, s.o.Load.Keys); i++ {
					muts = append(muts, &wailv1.Mutation{Table: s.table, Key: bench.Key(i), Op: wailv1.Op_OP_UPSERT, Value: val})
				}
				if acked, _, _ := s.write(ctx, muts, time.Now(), false); acked < len(muts) {
					failed.Add(int64(len(muts) - acked))
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%s: preload: %d writes failed", s.p.Name(), n)
	}
	if !s.waitDrained(ctx, 2*time.Minute) {
		return fmt.Errorf("%s: preload: %d writes without an event after 2m", s.p.Name(), s.matcher.Pending())
	}
	return nil
}

// findMax walks the rate ladder: up by StepFactor until a step is not
// sustainable, then one step halfway between the highest sustainable and
// the lowest unsustainable rate (as `wail bench --find-max`).
func (s *session) findMax(ctx context.Context, pr *PipelineResult) {
	rate, good, bad, bisected := math.Round(s.o.StartRate), 0.0, 0.0, false
	for {
		if len(pr.Steps) == s.o.MaxSteps {
			pr.StoppedBecause = fmt.Sprintf("ran --max-steps (%d) steps", s.o.MaxSteps)
			break
		}
		st := s.runStep(ctx, rate)
		pr.Steps = append(pr.Steps, st)
		fmt.Fprintln(s.o.Out, stepLine(s.p.Name(), st))
		if ctx.Err() != nil {
			pr.StoppedBecause = "interrupted"
			break
		}
		if st.Sustainable && rate > good {
			good = rate
		}
		if !st.Sustainable && (bad == 0 || rate < bad) {
			bad = rate
		}
		switch {
		case bad == 0:
			rate = math.Round(rate * s.o.StepFactor)
			continue
		case good == 0:
			// Halve until a step passes; the bisection above it is still due.
			if next := math.Round(rate / 2); next >= 1 && next < rate && len(pr.Steps) < s.o.MaxSteps {
				rate = next
				continue
			}
			pr.StoppedBecause = "no rate down to 1 write/s was sustainable"
		case !bisected && bad-good > 1:
			rate, bisected = math.Round((good+bad)/2), true
			continue
		default:
			pr.StoppedBecause = "bisected once between the highest sustainable and the lowest unsustainable rate"
		}
		break
	}
	pr.MaxSustainableRate, pr.FirstUnsustainableRate = good, bad
}

// stepCounters are what the senders count during a step.
type stepCounters struct {
	acked, noEvent atomic.Int64
	lastAck        atomic.Int64 // unix nanos of the last measured answer
	mu             sync.Mutex
	errs           map[string]int64
	ack            *hdrhistogram.Histogram
}

// runStep runs one constant-rate step: warm-up, measured period, drain.
func (s *session) runStep(ctx context.Context, rate float64) StepResult {
	o := s.o
	st := StepResult{TargetRate: rate, LoadAvg: loadAvg()}
	// The shared processes may have been restarted (other tests on the
	// machine): follow their pid files.
	for name, file := range sharedPidFiles(o) {
		if pid, err := readPidFile(file); err == nil {
			if old, ok := s.smp.roots[name]; ok && old != pid {
				s.smp.restarts++
				fmt.Fprintf(o.Out, "note: %s restarted (pid %d -> %d)\n", name, old, pid)
			}
			s.smp.Watch(name, pid)
		}
	}
	start := time.Now().Add(50 * time.Millisecond)
	from := start.Add(o.Warmup)
	end := from.Add(o.StepDuration)
	sched := bench.Schedule{Start: start, Rate: rate, Batch: o.Load.Batch, Duration: o.Warmup + o.StepDuration}
	s.matcher.ResetTotal()
	c := &stepCounters{errs: map[string]int64{}, ack: latency.NewHistogram()}
	dups0, ooo0 := s.cons.dups.Load(), s.cons.outOfOrder.Load()

	// Per-second samples of the lag, and usage at both ends of the
	// measured period.
	var before, after map[string]Usage
	var events0, events1 int64
	var ctr0, ctr1 map[string]float64
	var lags []float64
	sampDone := make(chan struct{})
	go func() {
		defer close(sampDone)
		time.Sleep(time.Until(from))
		before, events0 = s.smp.Take(), s.cons.events.Load()
		ctr0 = s.counters(ctx)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for t := range tick.C {
			lags = append(lags, float64(s.matcher.Pending()))
			if !t.Before(end) {
				break
			}
		}
		after, events1 = s.smp.Take(), s.cons.events.Load()
		ctr1 = s.counters(ctx)
		if u, ok := after[procPipeline]; ok {
			st.RSSMB, st.HWMMB = u.RSSMB, u.HWMMB
		}
	}()
	rngs := make([]*rand.Rand, o.Load.Concurrency)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(o.Load.Seed+uint64(rate), uint64(i)))
	}
	bench.Dispatch(ctx, sched, o.Load.Concurrency, func(w int, d bench.Due) {
		measured := !d.At.Before(from)
		muts := s.work.Next(rngs[w], o.Load.Batch)
		acked, errs, noEvent := s.write(ctx, muts, d.At, measured)
		now := time.Now()
		if !measured {
			return
		}
		c.acked.Add(int64(acked))
		c.noEvent.Add(int64(noEvent))
		c.lastAck.Store(now.UnixNano())
		c.mu.Lock()
		if acked > 0 {
			latency.RecordN(c.ack, now.Sub(d.At), int64(acked))
		}
		for k, n := range errs {
			c.errs[k] += int64(n)
		}
		c.mu.Unlock()
	})
	<-sampDone
	s.waitDrained(ctx, o.Drain)
	st.Unmatched = s.matcher.GiveUp(time.Now())
	s.matcher.Sweep(time.Now())

	secs := max(o.StepDuration.Seconds(), float64(c.lastAck.Load()-from.UnixNano())/1e9)
	st.Seconds = secs
	st.Acked, st.NoEvent = c.acked.Load(), c.noEvent.Load()
	st.WritesPerSec = float64(st.Acked) / secs
	st.EventsPerSec = float64(events1-events0) / o.StepDuration.Seconds()
	st.E2E = s.matcher.Total()
	st.Untracked = s.matcher.Untracked()
	st.Ack = latency.Summarize(c.ack)
	st.ErrorsByKind = c.errs
	for _, n := range c.errs {
		st.Errors += n
	}
	st.Duplicates, st.OutOfOrder = s.cons.dups.Load()-dups0, s.cons.outOfOrder.Load()-ooo0
	for _, l := range lags {
		st.MaxLag = max(st.MaxLag, int64(l))
	}
	st.LagSlope, st.LagGrowing = bench.LagGrowth(lags, rate)
	st.CPU = map[string]float64{}
	for name, a := range after {
		if b, ok := before[name]; ok {
			st.CPU[name] = a.CPUSeconds - b.CPUSeconds
		}
	}
	if k := float64(st.Acked) / 1000; k > 0 {
		st.CPUPer1kWrites = st.CPU[procPipeline] / k
		st.CPUPer1kWritesWithShared = (st.CPU[procPipeline] + st.CPU[procPG] + st.CPU[procReplica] + st.CPU[procKafka]) / k
	}
	st.Counters = diffCounters(ctr0, ctr1)
	st.ReadsPerEvent, st.EscalationRate = readStats(st.Counters)
	judge(&st, o.MaxP99, ctx.Err() != nil)
	return st
}

// counters reads the pipeline's own counters, nil when it has none or
// they cannot be read.
func (s *session) counters(ctx context.Context) map[string]float64 {
	cs, ok := s.p.(counterSource)
	if !ok {
		return nil
	}
	c, err := cs.Counters(ctx)
	if err != nil {
		return nil
	}
	return c
}

// judge applies the rule of `wail bench --find-max`.
func judge(st *StepResult, bound time.Duration, interrupted bool) {
	var why []string
	boundMs := float64(bound) / 1e6
	switch {
	case interrupted:
		why = append(why, "interrupted")
	case st.E2E.Count == 0:
		why = append(why, "no end-to-end latency measured")
	case st.E2E.P99 > boundMs:
		why = append(why, fmt.Sprintf("e2e p99 %.0f ms > %.0f ms", st.E2E.P99, boundMs))
	}
	if st.LagGrowing {
		why = append(why, fmt.Sprintf("lag growing (%+.0f writes/s)", st.LagSlope))
	}
	if st.Errors > 0 {
		why = append(why, fmt.Sprintf("%d errors", st.Errors))
	}
	if st.Unmatched > 0 {
		why = append(why, fmt.Sprintf("%d writes without an event", st.Unmatched))
	}
	if st.WritesPerSec < 0.9*st.TargetRate {
		why = append(why, fmt.Sprintf("%.0f writes/s < 90%% of the target", st.WritesPerSec))
	}
	st.Sustainable = len(why) == 0
	st.Verdict = "sustainable"
	if !st.Sustainable {
		st.Verdict = "not sustainable: " + strings.Join(why, ", ")
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGB = float64(kb) / (1 << 20)
		}
	}
	return m
}

func sharedPidFiles(o *Options) map[string]string {
	return map[string]string{procPG: o.PGPidFile, procReplica: o.PGReplicaPidFile, procKafka: o.KafkaPidFile}
}
