package resolver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestLargeEventsFitOneAppend: many large events of one partition, each
// well within the record limit, are published in appends that the log
// takes: none fails as a whole (the embedded log's MaxBatchBytes, the
// Kafka producer's batch), none is dead-lettered. The bus holds the first
// append until every key was read, so that all the others queue at once.
func TestLargeEventsFitOneAppend(t *testing.T) {
	t.Parallel()
	const keys, valueBytes = 40, 200 << 10 // 8 MiB in all
	cases := []struct {
		name     string
		maxBatch int64 // the log's
		limits   bool  // the resolver knows the log's limit (else DefaultAppendBytes)
	}{
		{name: "the log's limit", maxBatch: 1 << 20, limits: true},
		{name: "the default limit", maxBatch: DefaultAppendBytes + 64<<10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnvWith(ctx, t, "large", embedded.Options{MaxBatchBytes: c.maxBatch}, intentlog.TopicOptions{})
			for i := 0; i < keys; i++ {
				env.write(ctx, t, fmt.Sprintf("k%02d", i), uint64(i+1), strings.Repeat(string(rune('a'+i%26)), valueBytes))
			}
			bus := &faultyBus{Bus: env.bus, gate: make(chan struct{})}
			logger, _ := testLogger()
			cfg := testConfig(logger, NewMetrics(nil))
			cfg.Concurrency = 4
			if c.limits {
				cfg.Limits = env.log
			}
			r := New(env.log, env.st, bus, cfg)
			run := start(ctx, r, env.tb)
			reads := r.cfg.Metrics.reads.WithLabelValues("large", "0")
			waitUntil(ctx, t, "every key read", func() bool { return testutil.ToFloat64(reads) >= keys })
			close(bus.gate)
			waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == keys })
			run.stop(t)

			appends, failed := bus.counts()
			if failed > 0 {
				t.Errorf("%d of %d appends failed", failed, appends)
			}
			if min := int(keys * valueBytes / c.maxBatch); appends < min {
				t.Errorf("%d appends of 8 MiB of events, at most %d bytes each: want at least %d", appends, c.maxBatch, min)
			}
			got := onBus(ctx, t, env)
			for i := 0; i < keys; i++ {
				if k := fmt.Sprintf("k%02d", i); got[k] != 1 {
					t.Errorf("key %s: %d events, want 1", k, got[k])
				}
			}
			if ls := readLetters(ctx, t, env.log, "large"); len(ls) != 0 {
				t.Errorf("dead letters: %v", ls)
			}
		})
	}
}

// TestLargeLetterFitsTheLog: a parked key with large keys and many
// intents makes a dead letter far larger than a record, and than an
// append, may be; it is written as records of a size the log takes, in
// appends it takes, and every intent is settled.
func TestLargeLetterFitsTheLog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Appends of at most 1 MiB: the letter's records take more than one.
	env := newTestEnvWith(ctx, t, "bigletter", embedded.Options{MaxBatchBytes: 1 << 20}, intentlog.TopicOptions{})
	env.tb.MaxAttempts = 3
	const intents = 600
	key := strings.Repeat("k", 4096) // 600 intents of it: 2.4 MiB
	for i := 0; i < intents; i++ {
		env.write(ctx, t, key, uint64(i+1), "v")
	}
	fs := newFaultyStore(env.st)
	fs.setPoison(key, true)
	logger, _ := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.RetryMin, cfg.Limits = 20*time.Millisecond, env.log
	run := start(ctx, New(env.log, fs, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == intents })
	run.stop(t)
	seen := map[int64]bool{}
	ls := readLetters(ctx, t, env.log, env.tb.Name)
	for _, l := range ls {
		for _, o := range l.IntentOffsets {
			seen[o] = true
		}
	}
	if len(seen) != intents {
		t.Fatalf("%d of %d intents in %d dead-letter records", len(seen), intents, len(ls))
	}
	if want := intents * len(key) / maxLetterIntentBytes; len(ls) < want {
		t.Errorf("%d records for %d bytes of intents, want at least %d", len(ls), intents*len(key), want)
	}
}

// TestDeadLetterChunks: a letter's intents go into records of at most
// maxLetterIntents intents and maxLetterIntentBytes of encoded intents,
// each record as full as those bounds allow, in order, each intent with
// its offset.
func TestDeadLetterChunks(t *testing.T) {
	t.Parallel()
	// keyFor returns a key whose intents encode to exactly size bytes.
	keyFor := func(size int) []byte {
		for n := 1; n < size; n++ {
			key := []byte(strings.Repeat("k", n))
			in := intent.Intent{Table: "t", Key: key, Op: intent.Upsert, Version: 1 << 40, ID: "id"}
			if proto.Size(in.Proto()) == size {
				return key
			}
		}
		t.Fatalf("no key makes intents of %d bytes", size)
		return nil
	}
	cases := []struct {
		name    string
		key     []byte
		intents int
		want    []int // intents per record
	}{
		{name: "by count", key: []byte("k"), intents: 2500, want: []int{1000, 1000, 500}},
		{name: "by bytes, filling each record exactly", key: keyFor(512), intents: 1500, want: []int{512, 512, 476}},
		{name: "one intent", key: []byte("k"), intents: 1, want: []int{1}},
	}
	r := New(nil, nil, nil, Config{InstanceID: "r1"})
	l := newLoop(r, "t", 3, nil)
	for _, c := range cases {
		lt := &Letter{Key: c.key, Kind: LetterRead, Err: "boom", Attempts: 4}
		for i := 0; i < c.intents; i++ {
			lt.Intents = append(lt.Intents, intent.Intent{Table: "t", Key: c.key, Op: intent.Upsert, Version: 1<<40 + uint64(i), ID: "id"})
			lt.Offsets = append(lt.Offsets, int64(100+i))
		}
		ds := l.deadLetters(lt, t0)
		var got []int
		next := 0
		for _, d := range ds {
			got = append(got, len(d.Intents))
			if d.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ || d.Partition != 3 || d.ResolverId != "r1" || d.Attempts != 4 ||
				len(d.IntentOffsets) != len(d.Intents) {
				t.Fatalf("%s: record %+v", c.name, d)
			}
			for i, in := range d.Intents {
				if in.Version != 1<<40+uint64(next) || d.IntentOffsets[i] != int64(100+next) {
					t.Fatalf("%s: intent %d of a record is version %d at %d, want the letter's intent %d", c.name, i, in.Version, d.IntentOffsets[i], next)
				}
				next++
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: records of %v intents, want %v", c.name, got, c.want)
		}
	}
	if d := l.deadLetters(&Letter{Key: []byte("k"), Kind: LetterPublish}, t0); len(d) != 0 {
		t.Errorf("a letter without intents made records: %v", d)
	}
}
