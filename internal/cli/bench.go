package cli

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/bench"
	"github.com/wail-cdc/wail/internal/bench/versus"
	"github.com/wail-cdc/wail/internal/config"
)

// benchFlags are the flags of bench that do not map one to one on
// bench.Options.
type benchFlags struct {
	mix  string
	json bool
	prof profileFlags
	// pingInterval and pingTimeout are the Options.PingInterval and
	// PingTimeout of --producer's HTTP/2 connections.
	pingInterval, pingTimeout time.Duration
}

func newBenchCmd(g *globals) *cobra.Command {
	o := bench.DefaultOptions()
	f := benchFlags{mix: o.Mix.String()}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark wail open loop: ack and end-to-end latency, throughput, --find-max",
		Long: "Drive writes through the proxy's API at a constant arrival rate (open loop: each batch\n" +
			"has an intended send time and its latencies are measured from it, so a stall is not\n" +
			"hidden) and follow the events: ack latency (send -> answer), end-to-end latency (send ->\n" +
			"the event carrying the write's version or a later one), writes/s, events/s, resolver\n" +
			"lag, reads per event and errors. By default it starts a server in-process on a\n" +
			"temporary embedded data dir; --addr drives a running server instead.\n\n" +
			"--find-max steps the rate up until the e2e p99 exceeds --max-p99 or the lag keeps\n" +
			"growing, and reports the highest sustainable rate. Then it reruns that rate --confirm\n" +
			"times: it is the confirmed maximum only if every rerun is sustainable, else the next\n" +
			"lower sustainable rate is rerun the same way. Ctrl-C stops and prints what it has.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, g, o, f)
		},
	}
	floor := &cobra.Command{
		Use:   "floor",
		Short: "Measure the storage and pipeline floor, then wail's sustained rate, and compare",
		Long: "Measure what this machine can do at best with wail's own storage, in-process, with the\n" +
			"bench's record sizes, partitions and fsync policy but at large batches: raw appends to\n" +
			"the embedded log, raw Pebble batches, LWW store writes, and the whole embedded pipeline\n" +
			"(intent append, store write, read-back, event append) at batches of 100, 1000 and 4000\n" +
			"with 4 and 16 concurrent callers.\n" +
			"The best pipeline rate is the floor. Then run the bench (--find-max unless\n" +
			"--find-max=false is given) and print wail's sustained rate as a ratio of the floor.\n" +
			"--floor-only skips the bench.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Floor = true
			if !cmd.Flags().Changed("find-max") {
				o.FindMax = true
			}
			return runBench(cmd, g, o, f)
		},
	}
	floor.Flags().BoolVar(&o.FloorOnly, "floor-only", false, "only measure the floor")
	floor.Flags().DurationVar(&o.FloorDuration, "floor-duration", o.FloorDuration, "time of each raw measurement")
	cmd.AddCommand(floor)
	cmd.AddCommand(newBenchVersusCmd(g, &o, &f))
	registerWorkloadFlags(cmd, &o, &f)
	registerRunFlags(g, cmd, &o, &f)
	registerRunFlags(g, floor, &o, &f)
	return cmd
}

// registerWorkloadFlags adds the flags that shape the load, which
// vs-debezium shares (persistent flags of bench).
func registerWorkloadFlags(cmd *cobra.Command, o *bench.Options, f *benchFlags) {
	fl := cmd.PersistentFlags()
	fl.DurationVar(&o.Warmup, "warmup", o.Warmup, "time sent before measuring (each find-max step too)")
	fl.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "senders: write requests in flight at most")
	fl.IntVar(&o.Batch, "batch", o.Batch, "writes per request")
	fl.IntVar(&o.Keys, "keys", o.Keys, "key space of each table")
	fl.StringVar(&o.Dist, "keys-dist", o.Dist, "key distribution of updates and deletes: uniform or zipf")
	fl.Float64Var(&o.ZipfS, "zipf-s", o.ZipfS, "zipf exponent s > 0 (P(rank k) ~ k^-s)")
	fl.Float64Var(&o.HotShare, "hot-share", 0, "share 0..1 of updates and deletes sent to --hot-keys keys")
	fl.IntVar(&o.HotKeys, "hot-keys", o.HotKeys, "size of the hot set")
	fl.IntVar(&o.ValueSize, "value-size", o.ValueSize, "bytes per value")
	fl.StringVar(&f.mix, "mix", f.mix, "op mix: inserts write new keys, updates and deletes keys of the key space")
	fl.Int32Var(&o.Partitions, "partitions", 0, "partitions of new bench tables (0: server default)")
	fl.Uint64Var(&o.Seed, "seed", 0, "workload seed (0: random)")
	fl.DurationVar(&o.Drain, "drain", o.Drain, "how long to wait for the last events after sending")
	fl.DurationVar(&o.MaxP99, "max-p99", o.MaxP99, "find-max: bound on the e2e p99 of a sustainable step")
	fl.Float64Var(&o.StartRate, "start-rate", o.StartRate, "find-max: rate of the first step")
	fl.Float64Var(&o.StepFactor, "step-factor", o.StepFactor, "find-max: rate multiplier between steps")
	fl.DurationVar(&o.StepDuration, "step-duration", o.StepDuration, "find-max: measured time of each step")
	fl.IntVar(&o.MaxSteps, "max-steps", o.MaxSteps, "find-max: steps at most (bench: --confirm reruns included)")
	fl.StringVar(&o.PlotFile, "plot", "", "write latency and throughput over time to `FILE` (.svg or .html)")
}

// registerRunFlags adds the flags of a run of wail alone (bench and bench
// floor; vs-debezium runs its own servers).
func registerRunFlags(g *globals, cmd *cobra.Command, o *bench.Options, f *benchFlags) {
	fl := cmd.Flags()
	g.clientFlags(fl)
	fl.Float64Var(&o.Rate, "rate", o.Rate, "target writes per second (arrival rate)")
	fl.DurationVar(&o.Duration, "duration", o.Duration, "measured time of the run (after --warmup)")
	fl.IntVar(&o.Connections, "connections", 0, "HTTP connections at most (0: --concurrency; against --addr, at most the server's api.max_connections_per_client)")
	fl.IntVar(&o.Tables, "tables", o.Tables, "tables to spread the writes over (bench_0, bench_1, ...)")
	fl.BoolVar(&o.Preload, "preload", o.Preload, "write every key of the key space once before measuring")
	fl.BoolVar(&o.AcceptGzip, "gzip", o.AcceptGzip, "accept gzip answers and events, as a default connect-go client does")
	fl.BoolVar(&o.Producer, "producer", false, "send through the Go producer client (client.Producer), one write per call by each of --concurrency writers; needs --batch 1")
	fl.DurationVar(&f.pingInterval, "ping-interval", client.DefaultPingInterval, "--producer: ping its HTTP/2 connection when nothing came on it for this long, to find it dead (negative: no pings, e.g. for a proxy that refuses frequent pings)")
	fl.DurationVar(&f.pingTimeout, "ping-timeout", client.DefaultPingTimeout, "--producer: close its HTTP/2 connection, and open another, when a ping is not answered within this")
	fl.IntVar(&o.EventBatch, "event-batch", o.EventBatch, "events per Subscribe message at most (0: one per message, as older clients get)")
	fl.BoolVar(&o.FindMax, "find-max", false, "step the rate up to find the highest sustainable rate")
	fl.Float64Var(&o.MaxRate, "max-rate", 0, "find-max: rate cap (0: none)")
	fl.IntVar(&o.Confirm, "confirm", o.Confirm, "find-max: reruns of the highest sustainable rate, all to be sustainable, before it is the confirmed maximum (0: none)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON on stdout (the table goes to stderr)")
	fl.StringVar(&o.DataDir, "data-dir", "", "in-process server: data directory (default: temporary, removed)")
	fl.BoolVar(&o.NoSync, "no-sync", false, "in-process server and floor: skip fsync (not durable)")
	fl.BoolVar(&o.SyncFilesystem, "sync-filesystem", config.Default().Log.SyncFilesystem, "in-process server and floor: the embedded log syncs once per round for all partitions (log.sync_filesystem)")
	f.prof.register(fl)
}

// benchRun runs a bench (tests replace it to see the options).
var benchRun = bench.Run

func runBench(cmd *cobra.Command, g *globals, o bench.Options, f benchFlags) error {
	mix, err := bench.ParseMix(f.mix)
	if err != nil {
		return usageError{err: err}
	}
	o.Mix = mix
	if cmd.Flags().Changed("addr") {
		if o.Addr, err = g.baseURL(); err != nil {
			return usageError{err: err}
		}
	}
	if o.Conn, err = g.connOptions(); err != nil { // TLS and token of a remote server
		return err
	}
	if f.pingInterval == 0 || f.pingTimeout <= 0 {
		return usageErrorf("--ping-interval must not be 0 (negative: no pings) and --ping-timeout must be positive")
	}
	o.Conn.PingInterval, o.Conn.PingTimeout = f.pingInterval, f.pingTimeout
	if g.timeout > 0 {
		o.RequestTimeout = g.timeout // --timeout (default 10s)
	}
	var human io.Writer = g.stdout
	if f.json {
		human, o.JSON = g.stderr, g.stdout
	}
	o.Out, o.Terminal = human, isTerminal(human)
	o.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := o.Validate(); err != nil {
		return usageError{err: err}
	}
	stop, err := f.prof.start()
	if err != nil {
		return err
	}
	_, err = benchRun(cmd.Context(), o)
	if perr := stop(); err == nil {
		err = perr
	}
	return err
}

// newBenchVersusCmd is `wail bench vs-debezium`: the workload flags of bench
// (--keys, --mix, --batch, --concurrency, --warmup, --step-duration,
// --start-rate, ... and --plot) apply; the flags here say where the shared
// PostgreSQL and Kafka are and how to start the two pipelines.
func newBenchVersusCmd(g *globals, load *bench.Options, f *benchFlags) *cobra.Command {
	v := versus.DefaultOptions()
	var pipelines string
	cmd := &cobra.Command{
		Use:   "vs-debezium",
		Short: "wail and Debezium side by side on the same PostgreSQL and Kafka (make bench-vs-debezium)",
		Long: "Run the same open-loop workload through wail (wail serve --store postgres --log kafka, writes\n" +
			"through the proxy) and through Debezium Server (writes straight into PostgreSQL, pgoutput,\n" +
			"Kafka sink), one after the other, stepping the rate up until each is not sustainable.\n" +
			"One consumer code measures both: from each write's intended send time to the arrival on\n" +
			"Kafka of the first event at or after the write. CPU and memory come from /proc.\n" +
			"bench/debezium/run.sh (make bench-vs-debezium) starts the services and runs this.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			mix, err := bench.ParseMix(f.mix)
			if err != nil {
				return usageError{err: err}
			}
			v.Load = *load
			v.Load.Mix = mix
			if v.Load.Seed == 0 {
				v.Load.Seed = rand.Uint64()
			}
			fl := cmd.Flags()
			set := func(name string, apply func()) {
				if fl.Changed(name) {
					apply()
				}
			}
			set("warmup", func() { v.Warmup = load.Warmup })
			set("step-duration", func() { v.StepDuration = load.StepDuration })
			set("drain", func() { v.Drain = load.Drain })
			set("start-rate", func() { v.StartRate = load.StartRate })
			set("step-factor", func() { v.StepFactor = load.StepFactor })
			set("max-steps", func() { v.MaxSteps = load.MaxSteps })
			set("max-p99", func() { v.MaxP99 = load.MaxP99 })
			set("partitions", func() { v.Partitions = load.Partitions })
			v.PlotFile = load.PlotFile
			v.Pipelines = strings.Split(pipelines, ",")
			v.Out = g.stdout
			if err := v.Validate(); err != nil {
				return usageError{err: err}
			}
			_, err = versus.Run(cmd.Context(), &v)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&v.DSN, "dsn", "", "PostgreSQL primary both pipelines use (needs wal_level=logical)")
	fl.StringVar(&v.Brokers, "brokers", v.Brokers, "Kafka broker(s) both pipelines use")
	fl.StringVar(&v.WailBin, "wail-bin", v.WailBin, "wail binary to run as wail serve")
	fl.StringArrayVar(&v.WailReplicaDSNs, "wail-replica-dsn", nil, "replica DSN for wail's reads (default none: Debezium reads only the primary)")
	fl.StringVar(&v.DebeziumCmd, "debezium-cmd", v.DebeziumCmd, "command that becomes Debezium Server (configured from DBZ_* variables)")
	fl.StringVar(&v.DebeziumUser, "debezium-user", v.DebeziumUser, "replication role Debezium connects as")
	fl.StringVar(&v.DebeziumPassword, "debezium-password", v.DebeziumPassword, "its password")
	fl.StringVar(&pipelines, "pipelines", strings.Join(v.Pipelines, ","), "pipelines to run, in order")
	fl.IntVar(&v.PGConns, "pg-conns", v.PGConns, "PostgreSQL connections of the Debezium load (wail's store pool has 16)")
	fl.StringVar(&v.JSONFile, "json-out", "", "write the result as JSON to `FILE`")
	fl.StringVar(&v.PGPidFile, "pg-pid-file", v.PGPidFile, "postmaster.pid of the PostgreSQL primary (CPU)")
	fl.StringVar(&v.PGReplicaPidFile, "pg-replica-pid-file", v.PGReplicaPidFile, "postmaster.pid of the replica (CPU)")
	fl.StringVar(&v.KafkaPidFile, "kafka-pid-file", v.KafkaPidFile, "pid file of the Kafka broker (CPU)")
	return cmd
}
