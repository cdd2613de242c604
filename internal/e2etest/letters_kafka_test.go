package e2etest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestLettersFitKafkaTopic: the resolver fits dead letters to the record
// limit of the table's dead-letter topic on a real Kafka broker, whose
// max.message.bytes was lowered (here set at its creation, as an operator
// does with kafka-configs.sh): the limit the log reports is the topic's
// own max.message.bytes, not the producer's default; a key with so many
// intents that one letter would exceed it is dead-lettered in records
// within it (none refused, nothing held back), through the resolver's
// Kafka transactions as `wail serve` runs it; a key so large that its
// letter cannot fit leaves its partition unhealthy, naming the topic and
// the setting, and counts wail_resolver_dead_letters_too_large_total,
// while the other keys get their events. With the limit lowered after the
// log read it (the topic made at wail's default), the broker refuses the
// first letter cut to the old limit: the resolver said "a dead letter does
// not fit the record limit ... Raise the record limit" (ERROR), counted
// it as too large and made the partition unhealthy, and retried with the
// stale limit until its next read of the limits 5 s later; it reads them
// again at once and cuts the letters to the new limit, with a warning.
func TestLettersFitKafkaTopic(t *testing.T) {
	brokers := kafkaBrokers(t)
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 8, QueryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log, err := kafka.Open(context.Background(), kafka.Options{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	for _, tc := range []struct {
		name     string
		topicMax int    // the dead-letter topic's max.message.bytes
		key      string // the poison key
		intents  int    // of the poison key
		fits     bool
		// lowered: the topic is made at Kafka's default, and its
		// max.message.bytes lowered while the resolver runs (wail read
		// the default first).
		lowered bool
	}{
		{name: "many intents", topicMax: 16 << 10, key: "hot-" + strings.Repeat("h", 200), intents: 300, fits: true},
		{name: "many intents, limit lowered while running", topicMax: 16 << 10, key: "hot-" + strings.Repeat("h", 200), intents: 300, fits: true, lowered: true},
		{name: "key larger than the limit", topicMax: 8 << 10, key: strings.Repeat("k", 9<<10), intents: 1, fits: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			table := sqltest.Name("fit_")
			letters := dlq.Topic(table)
			if !tc.lowered {
				createTopic(t, ctx, brokers, letters, dlq.Partitions, map[string]string{"max.message.bytes": strconv.Itoa(tc.topicMax)})
			}

			bus := eventbus.New(log)
			cat, err := catalog.Open(ctx, st, catalog.Options{Provisioner: provision(log, bus),
				Defaults: catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 2 * time.Second, Partitions: 1}})
			if err != nil {
				t.Fatal(err)
			}
			tb, _, err := cat.Create(ctx, catalog.Table{Name: table, MaxAttempts: 1, MaxRetryTime: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			// The limit read from Kafka is the topic's own.
			recordLimit := func() (int, string) {
				limit, source, err := log.RecordLimit(ctx, letters)
				if err != nil {
					t.Fatal(err)
				}
				return limit, source
			}
			ownLimit := func(limit int, source string) bool {
				return limit <= tc.topicMax && limit >= tc.topicMax-256 && strings.Contains(source, "max.message.bytes="+strconv.Itoa(tc.topicMax))
			}
			limit, source := recordLimit()
			if !tc.lowered && !ownLimit(limit, source) {
				t.Fatalf("record limit of %s: %d (%s); want just under the topic's max.message.bytes %d", letters, limit, source, tc.topicMax)
			}
			if tc.lowered {
				if limit <= tc.topicMax {
					t.Fatalf("record limit of %s at wail's default: %d (%s)", letters, limit, source)
				}
				// The log read the topic's limit at its creation: an
				// operator lowers it (the log's copy is stale for up to
				// a minute, or until a broker refuses a record).
				setTopicConfig(t, ctx, brokers, letters, "max.message.bytes", strconv.Itoa(tc.topicMax))
			}

			clock, _ := hlc.New(7, nil)
			px := proxy.New(log, st, cat, clock, proxy.Limits{MaxKeyBytes: 16 << 10, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)
			writeKey(ctx, t, px, table, tc.key, tc.intents)
			res := px.Write(ctx, []proxy.Mutation{{Table: table, Key: []byte("other"), Value: []byte(`{"other":1}`)}})
			if res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
			poison := NewPoison(table, []string{tc.key}, nil)
			poison.On.Store(true)

			logs := &logbuf.Buffer{}
			reg := prometheus.NewRegistry()
			healthReg := health.NewRegistry(nil)
			cfg := resolver.Config{
				Group: groupOf(table), Concurrency: 8, BackoffMin: time.Millisecond, BackoffMax: 50 * time.Millisecond,
				Horizon: time.Minute, CommitInterval: 20 * time.Millisecond, MaxUnresolved: 100000,
				RetryMin: time.Millisecond, RetryMax: 50 * time.Millisecond, InstanceID: "fit-e2e",
				Logger:  slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, logs), &slog.HandlerOptions{Level: slog.LevelWarn})),
				Metrics: resolver.NewMetrics(reg), Health: healthReg,
				Limits: log, // as the server passes it (resolver.AppendLimiter, RecordLimiter)
				Join:   server.GroupJoin(log, groupOf(table), "one", 1),
			}
			rctx, stopResolver := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- resolver.New(log, poison.Store(st), bus, cfg).Run(rctx, []catalog.Table{tb}, nil) }()
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					stopResolver()
					if err := <-done; err != nil {
						t.Errorf("resolver: %v", err)
					}
				}
			}
			defer stop()
			tooLarge := func() float64 { return counter(t, reg, "wail_resolver_dead_letters_too_large_total") }
			if !tc.fits {
				waitFor(t, "the letter refused as too large, counted", func() bool { return tooLarge() > 0 })
				var rep health.Report
				waitFor(t, "the partition unhealthy", func() bool {
					rep = healthReg.Report()
					return rep.State == health.Unhealthy
				})
				waitFor(t, "the other key's event", func() bool {
					for _, e := range readEvents(t, ctx, log, tb) {
						if string(e.Key) == "other" {
							return true
						}
					}
					return false
				})
				stop()
				var reason string
				for _, c := range rep.Conditions {
					reason += c.Reason + " / " + c.Action + "\n"
				}
				for _, want := range []string{letters, "max.message.bytes"} {
					if !strings.Contains(reason, want) {
						t.Errorf("health %q does not name %q", reason, want)
					}
				}
				if committed, err := log.Committed(ctx, groupOf(table), intent.Topic(table)); err != nil || committed[0] != 0 {
					t.Fatalf("committed %v (%v): the key's intent was settled without a letter", committed, err)
				}
				return
			}

			waitCommittedPast(ctx, t, log, groupOf(table), tb)
			stop()
			if limit, source = recordLimit(); !ownLimit(limit, source) {
				t.Errorf("record limit of %s: %d (%s); want just under the topic's max.message.bytes %d", letters, limit, source, tc.topicMax)
			}
			// Refused at first when the limit was lowered since it was
			// read (the broker said so); cut again to the limit read
			// again, not reported as a letter that cannot fit.
			if n := tooLarge(); n != 0 {
				t.Errorf("wail_resolver_dead_letters_too_large_total %v: letters that fit the topic's limit counted as too large", n)
			}
			if strings.Contains(logs.String(), "does not fit") {
				t.Errorf("the resolver said a letter that fits the topic's limit cannot:\n%.2000s", logs.String())
			}
			recs := readRecords(t, ctx, log, letters)
			var offsets []int64
			for _, rec := range recs {
				if size := len(rec.Key) + len(rec.Value); size > limit {
					t.Errorf("a dead-letter record of %d bytes, over the limit %d", size, limit)
				}
				m, err := dlq.Decode(rec.Value)
				if err != nil {
					t.Fatal(err)
				}
				l := m.GetLetter()
				if l == nil || string(l.Key) != tc.key || !strings.Contains(l.Error, "injected: this row cannot be read") {
					t.Fatalf("letter %.300v", m)
				}
				offsets = append(offsets, l.IntentOffsets...)
			}
			sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
			if len(recs) < 2 || len(offsets) != tc.intents || offsets[0] != 0 || offsets[len(offsets)-1] != int64(tc.intents-1) {
				t.Fatalf("%d letters hold intent offsets %v; want every one of 0 to %d, over several letters", len(recs), offsets, tc.intents-1)
			}
			t.Logf("%d intents of one key dead-lettered in %d records of at most %d bytes", tc.intents, len(recs), limit)
		})
	}
}

// writeKey writes n versions of key.
func writeKey(ctx context.Context, t *testing.T, px *proxy.Proxy, table, key string, n int) {
	t.Helper()
	for i := range n {
		res := px.Write(ctx, []proxy.Mutation{{Table: table, Key: []byte(key), Value: fmt.Appendf(nil, `{"n":%d}`, i)}})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}
}

// setTopicConfig sets a topic's config from another client, as an
// operator does with kafka-configs.sh while wail runs.
func setTopicConfig(t *testing.T, ctx context.Context, brokers []string, topic, name, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}}, topic)
	if err == nil {
		for _, r := range resp {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatalf("setting %s of %s to %s: %v", name, topic, value, err)
	}
}

// createTopic makes a topic with configs, as an operator does.
func createTopic(t *testing.T, ctx context.Context, brokers []string, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// readRecords reads partition 0 of topic to its end.
func readRecords(t *testing.T, ctx context.Context, log intentlog.Log, topic string) []intentlog.Record {
	t.Helper()
	start, end, err := log.Bounds(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := log.NewReader(topic, 0, start)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []intentlog.Record
	for r.Position() < end {
		recs, err := r.Next(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}
