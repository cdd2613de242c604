package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/wail-cdc/wail/client"
)

// Key distributions.
const (
	DistUniform = "uniform"
	DistZipf    = "zipf"
)

// Options configure a bench run. DefaultOptions holds the defaults of the
// command line.
type Options struct {
	// Addr is the server to drive; empty starts one in-process on a
	// temporary embedded data dir (DataDir, NoSync, Partitions apply).
	Addr string
	// Conn is how to reach Addr (TLS files, token); its Addr is ignored.
	Conn    client.Options
	DataDir string
	NoSync  bool
	// SyncFilesystem: the in-process server's and the floor's embedded
	// log share one syncfs(2) per round across partitions
	// (log.sync_filesystem) instead of an fsync per partition.
	SyncFilesystem bool

	Rate        float64       // writes per second (fixed-rate run)
	Duration    time.Duration // measured time of a fixed-rate run
	Warmup      time.Duration // sent before each measured period, not recorded
	Concurrency int           // senders: requests in flight at most
	Connections int           // HTTP connections at most (0: Concurrency)
	Batch       int           // writes per request
	Keys        int           // key space of each table
	Dist        string        // DistUniform or DistZipf
	ZipfS       float64       // zipf exponent s > 0
	HotShare    float64       // share of updates and deletes sent to the hot keys
	HotKeys     int           // size of the hot set
	ValueSize   int           // bytes per value
	Mix         Mix
	Tables      int
	Partitions  int32 // per table (0: server default)
	Preload     bool  // write every key once before measuring
	// AcceptGzip lets the server gzip its answers and events, as it does
	// for a default connect-go client (false: ask for identity).
	AcceptGzip bool
	// Producer sends the measured writes through client.Producer, one
	// write per call by each of Concurrency logical writers (Batch must
	// be 1): the way applications write one key at a time, batched by
	// the client.
	Producer bool
	// EventBatch is the most events the bench asks the server to send per
	// Subscribe message (0: one event per message, as clients that
	// predate batches get).
	EventBatch int
	Seed       uint64
	// RequestTimeout bounds one Write.
	RequestTimeout time.Duration
	// Drain is how long to wait after the sends for the last events (and,
	// between find-max steps, for the resolver to catch up).
	Drain time.Duration

	FindMax      bool
	MaxP99       time.Duration // bound on e2e p99 for a sustainable step
	StartRate    float64
	StepFactor   float64
	StepDuration time.Duration
	// MaxSteps bounds the steps of --find-max, confirmation reruns
	// included.
	MaxSteps int
	MaxRate  float64 // 0: no cap
	// Confirm is how many more times --find-max reruns its highest
	// sustainable rate; it holds only if every rerun is sustainable, else
	// the next lower sustainable rate is confirmed (0: no confirmation).
	Confirm int

	Floor         bool // also measure the raw floor
	FloorOnly     bool // only the floor
	FloorDuration time.Duration

	// Out receives the table and the progress line; JSON, when set, the
	// JSON document; PlotFile, when set, names the .svg or .html plot.
	Out      io.Writer
	JSON     io.Writer
	PlotFile string
	// Terminal rewrites the progress line in place.
	Terminal bool
	// Logger receives the in-process server's log (nil: discarded).
	Logger *slog.Logger
}

// DefaultOptions returns the defaults of `wail bench`.
func DefaultOptions() Options {
	return Options{
		Rate: 2000, Duration: 20 * time.Second, Warmup: 2 * time.Second,
		Concurrency: 64, Batch: 10, Keys: 10000, Dist: DistUniform, ZipfS: 1.1, HotKeys: 10,
		ValueSize: 100, Mix: Mix{Insert: 10, Update: 80, Delete: 10}, Tables: 1, Preload: true, AcceptGzip: true, EventBatch: 1000,
		RequestTimeout: 10 * time.Second, Drain: 30 * time.Second,
		MaxP99: time.Second, StartRate: 1000, StepFactor: 1.5, StepDuration: 10 * time.Second, MaxSteps: 20, Confirm: 2,
		FloorDuration: 5 * time.Second,
	}
}

// Validate names the first wrong option.
func (o *Options) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.Rate > 0, "--rate must be positive")
	check(o.Duration > 0 && o.Warmup >= 0, "--duration must be positive, --warmup not negative")
	check(o.Concurrency > 0 && o.Connections >= 0, "--concurrency must be positive, --connections not negative")
	check(o.Batch > 0 && o.Batch <= 10000, "--batch must be in 1..10000")
	check(o.Keys > 0, "--keys must be positive")
	check(o.Dist == DistUniform || o.Dist == DistZipf, "--keys-dist %q: use uniform or zipf", o.Dist)
	check(o.ZipfS > 0, "--zipf-s must be positive")
	check(o.HotShare >= 0 && o.HotShare <= 1, "--hot-share must be in 0..1")
	check(o.HotKeys > 0 && o.HotKeys <= o.Keys, "--hot-keys must be in 1..--keys")
	check(o.ValueSize >= 0 && o.ValueSize <= 1<<20, "--value-size must be in 0..1048576")
	check(o.Mix.total() > 0, "--mix needs a positive weight")
	check(o.Tables > 0 && o.Tables <= 100, "--tables must be in 1..100")
	check(o.Partitions >= 0 && o.Partitions <= 1024, "--partitions must be in 0..1024")
	check(o.RequestTimeout > 0 && o.Drain >= 0, "--timeout must be positive, --drain not negative")
	check(o.MaxP99 > 0 && o.StartRate > 0 && o.StepFactor > 1 && o.StepDuration > 0 && o.MaxSteps > 0 && o.MaxRate >= 0,
		"find-max: --max-p99, --start-rate, --step-duration and --max-steps must be positive, --step-factor above 1")
	check(o.Confirm >= 0, "--confirm must not be negative (0: no confirmation)")
	check(!o.Producer || o.Batch == 1, "--producer: use --batch 1 (each logical writer writes one key at a time; the producer batches)")
	check(o.EventBatch >= 0 && o.EventBatch <= 1000, "--event-batch must be in 0..1000")
	check(o.FloorDuration > 0, "--floor-duration must be positive")
	check(o.Out != nil, "bench: Out is required")
	return errors.Join(errs...)
}

func (o *Options) eventBatch() int32 { return int32(o.EventBatch) }

func (o *Options) connections() int {
	if o.Connections > 0 {
		return o.Connections
	}
	return o.Concurrency
}

// Mix is the weight of each operation: inserts write new keys, updates
// upsert keys of the key space, deletes delete them.
type Mix struct {
	Insert, Update, Delete int
}

func (m Mix) total() int { return m.Insert + m.Update + m.Delete }

// String is the flag form, e.g. "insert=10,update=80,delete=10".
func (m Mix) String() string {
	return fmt.Sprintf("insert=%d,update=%d,delete=%d", m.Insert, m.Update, m.Delete)
}

// ParseMix parses "insert=20,update=70,delete=10"; missing operations weigh
// 0, weights are relative (they need not add up to 100).
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if !ok || err != nil || n < 0 {
			return Mix{}, fmt.Errorf("mix %q: want op=weight with a weight >= 0, got %q", s, part)
		}
		switch strings.TrimSpace(name) {
		case "insert":
			m.Insert = n
		case "update":
			m.Update = n
		case "delete":
			m.Delete = n
		default:
			return Mix{}, fmt.Errorf("mix %q: unknown op %q (insert, update, delete)", s, name)
		}
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("mix %q: every weight is 0", s)
	}
	return m, nil
}

// ConfigReport is the configuration as the JSON output records it.
type ConfigReport struct {
	Target        string  `json:"target"`
	Rate          float64 `json:"rate"`
	Duration      string  `json:"duration"`
	Warmup        string  `json:"warmup"`
	Concurrency   int     `json:"concurrency"`
	Connections   int     `json:"connections"`
	Batch         int     `json:"batch"`
	Keys          int     `json:"keys"`
	KeyBytes      int     `json:"key_bytes"`
	KeysDist      string  `json:"keys_dist"`
	ZipfS         float64 `json:"zipf_s"`
	HotShare      float64 `json:"hot_share"`
	HotKeys       int     `json:"hot_keys"`
	ValueSize     int     `json:"value_size"`
	Mix           string  `json:"mix"`
	Tables        int     `json:"tables"`
	Preload       bool    `json:"preload"`
	AcceptGzip    bool    `json:"accept_gzip"`
	EventBatch    int     `json:"event_batch"`
	Producer      bool    `json:"producer"`
	Seed          uint64  `json:"seed"`
	Drain         string  `json:"drain"`
	FindMax       bool    `json:"find_max"`
	MaxP99        string  `json:"max_p99"`
	StartRate     float64 `json:"start_rate"`
	StepFactor    float64 `json:"step_factor"`
	StepDuration  string  `json:"step_duration"`
	MaxSteps      int     `json:"max_steps"`
	MaxRate       float64 `json:"max_rate"`
	Confirm       int     `json:"confirm"`
	Floor         bool    `json:"floor"`
	FloorDuration string  `json:"floor_duration"`
}

func (o *Options) report() ConfigReport {
	target := "in-process"
	if o.Addr != "" {
		target = o.Addr
	}
	return ConfigReport{
		Target: target, Rate: o.Rate, Duration: o.Duration.String(), Warmup: o.Warmup.String(),
		Concurrency: o.Concurrency, Connections: o.connections(), Batch: o.Batch, Keys: o.Keys, KeyBytes: keyBytes,
		KeysDist: o.Dist, ZipfS: o.ZipfS, HotShare: o.HotShare, HotKeys: o.HotKeys, ValueSize: o.ValueSize,
		Mix: o.Mix.String(), Tables: o.Tables, Preload: o.Preload, AcceptGzip: o.AcceptGzip, EventBatch: o.EventBatch, Producer: o.Producer, Seed: o.Seed, Drain: o.Drain.String(),
		FindMax: o.FindMax, MaxP99: o.MaxP99.String(), StartRate: o.StartRate, StepFactor: o.StepFactor,
		StepDuration: o.StepDuration.String(), MaxSteps: o.MaxSteps, MaxRate: o.MaxRate, Confirm: o.Confirm,
		Floor: o.Floor || o.FloorOnly, FloorDuration: o.FloorDuration.String(),
	}
}
