package versus

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/wail-cdc/wail/internal/bench"
)

// Pipeline names.
const (
	PipeWail     = "wail"
	PipeDebezium = "debezium"
)

// Options configure `wail bench vs-debezium`. DefaultOptions holds the
// defaults of the command line.
type Options struct {
	DSN     string // the PostgreSQL primary both pipelines use
	Brokers string // the Kafka broker(s) both pipelines use
	// WailBin is the wail binary run as `serve`; WailReplicaDSNs are passed
	// as --replica-dsn (none by default: Debezium reads the primary only).
	WailBin         string
	WailReplicaDSNs []string
	// DebeziumCmd starts Debezium Server in the foreground and becomes its
	// JVM (bench/debezium/run.sh server); DebeziumUser/Password is the
	// replication role it connects as.
	DebeziumCmd      string
	DebeziumUser     string
	DebeziumPassword string
	Pipelines        []string // in run order

	// Load is the workload, as `wail bench` takes it: Keys, Dist, ZipfS,
	// HotShare, HotKeys, ValueSize (>= 8), Mix, Batch, Concurrency, Seed.
	Load       bench.Options
	Partitions int32 // of the event topics (both pipelines)
	PGConns    int   // PostgreSQL connections of the Debezium load (wail's store pool has 16)

	Warmup       time.Duration
	StepDuration time.Duration
	Drain        time.Duration
	StartRate    float64
	StepFactor   float64
	MaxSteps     int // per pipeline
	MaxP99       time.Duration
	// RequestTimeout bounds one batch write.
	RequestTimeout time.Duration

	// Pid files of the shared processes whose CPU is recorded.
	PGPidFile        string
	PGReplicaPidFile string
	KafkaPidFile     string

	Out      io.Writer // the tables and progress
	JSONFile string
	PlotFile string
}

// DefaultOptions returns the defaults of `wail bench vs-debezium`.
func DefaultOptions() Options {
	load := bench.DefaultOptions()
	return Options{
		Brokers: "127.0.0.1:9092", WailBin: "bin/wail",
		DebeziumCmd: "bash bench/debezium/run.sh server", DebeziumUser: "wail_repl", DebeziumPassword: "wail_repl",
		Pipelines: []string{PipeWail, PipeDebezium},
		Load:      load, Partitions: 8, PGConns: 16,
		Warmup: 3 * time.Second, StepDuration: 20 * time.Second, Drain: 15 * time.Second,
		StartRate: 1000, StepFactor: 1.5, MaxSteps: 8, MaxP99: time.Second, RequestTimeout: 10 * time.Second,
		PGPidFile:        "/var/lib/postgresql/15/wail/postmaster.pid",
		PGReplicaPidFile: "/var/lib/postgresql/15/wailreplica/postmaster.pid",
		KafkaPidFile:     "/var/lib/wail-kafka/kafka.pid",
	}
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.DSN != "", "--dsn is required (the PostgreSQL primary)")
	check(o.Brokers != "", "--brokers is required")
	check(len(o.Pipelines) > 0, "--pipelines names none")
	for _, p := range o.Pipelines {
		check(p == PipeWail || p == PipeDebezium, "--pipelines: unknown %q (wail, debezium)", p)
	}
	check(!slices.Contains(o.Pipelines, PipeWail) || o.WailBin != "", "--wail-bin is required")
	check(!slices.Contains(o.Pipelines, PipeDebezium) || o.DebeziumCmd != "", "--debezium-cmd is required")
	check(o.Load.ValueSize >= 8, "--value-size must be >= 8 (the write id)")
	check(o.Load.Batch > 0 && o.Load.Concurrency > 0 && o.Load.Keys > 0, "--batch, --concurrency and --keys must be > 0")
	check(o.PGConns > 0 && o.Partitions > 0, "--pg-conns and --partitions must be > 0")
	check(o.StartRate > 0 && o.StepFactor > 1 && o.MaxSteps > 0, "--start-rate > 0, --step-factor > 1, --max-steps > 0")
	check(o.StepDuration > 0 && o.Warmup >= 0 && o.Drain > 0 && o.MaxP99 > 0, "durations must be positive")
	return errors.Join(errs...)
}
