package resolver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// epochLog is the embedded log with leader epochs, as a Kafka log has
// them (intentlog.EpochLog): the intents are at epoch 1 until diverge()
// plays an unclean leader election: the new leader's log leaves epoch 1
// at offset `at` and holds the intents from there on under epoch 2. A
// reader started at an offset above `at` with epoch 1 fails its first
// Next with the truncation the Kafka reader reports.
type epochLog struct {
	Log
	mu      sync.Mutex
	at      int64                           // < 0: not diverged
	unknown bool                            // no epoch is known: a start with one fails (ErrEpochUnknown)
	commits map[int32]intentlog.EpochOffset // of the intent topic, with epochs
	history []intentlog.EpochOffset         // every commit, in order
}

func newEpochLog(l Log) *epochLog {
	return &epochLog{Log: l, at: -1, commits: map[int32]intentlog.EpochOffset{}}
}

func (l *epochLog) diverge(at int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = at
}

// epochOf is the epoch of the intent at offset.
func (l *epochLog) epochOf(offset int64) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at >= 0 && offset >= l.at {
		return 2
	}
	return 1
}

func (l *epochLog) CommitEpochs(ctx context.Context, group, topic string, offsets map[int32]intentlog.EpochOffset) error {
	plain := map[int32]int64{}
	for p, o := range offsets {
		plain[p] = o.Offset
	}
	if err := l.Log.Commit(ctx, group, topic, plain); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, o := range offsets {
		l.commits[p] = o
		l.history = append(l.history, o)
	}
	return nil
}

// commitsAt returns the epochs offset was committed with, in order.
func (l *epochLog) commitsAt(offset int64) []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int32
	for _, o := range l.history {
		if o.Offset == offset {
			out = append(out, o.Epoch)
		}
	}
	return out
}

func (l *epochLog) CommittedEpochs(ctx context.Context, group, topic string) (map[int32]intentlog.EpochOffset, error) {
	plain, err := l.Log.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]intentlog.EpochOffset{}
	for p, o := range plain {
		out[p] = intentlog.EpochOffset{Offset: o, Epoch: -1}
		if c, ok := l.commits[p]; ok && c.Offset == o {
			out[p] = c
		}
	}
	return out, nil
}

func (l *epochLog) committedEpoch(p int32) intentlog.EpochOffset {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commits[p]
}

func (l *epochLog) NewEpochReader(topic string, p int32, at intentlog.EpochOffset) (intentlog.EpochReader, error) {
	rd, err := l.Log.NewReader(topic, p, at.Offset)
	if err != nil {
		return nil, err
	}
	return &epochReader{Reader: rd, l: l, start: at}, nil
}

type epochReader struct {
	intentlog.Reader
	l         *epochLog
	start     intentlog.EpochOffset
	validated bool
}

func (r *epochReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if !r.validated {
		r.validated = true
		r.l.mu.Lock()
		at, unknown := r.l.at, r.l.unknown
		r.l.mu.Unlock()
		if unknown && r.start.Epoch >= 0 {
			return nil, &intentlog.Truncation{From: -1, Read: r.start.Offset, Epoch: -1, Err: intentlog.ErrEpochUnknown}
		}
		if r.start.Epoch == 1 && at >= 0 && at < r.start.Offset {
			return nil, &intentlog.Truncation{From: at, Read: r.start.Offset, Epoch: 2, Err: context.Canceled}
		}
	}
	return r.Reader.Next(ctx)
}

func (r *epochReader) EpochBefore(offset int64) int32 {
	switch {
	case offset == r.start.Offset:
		return r.start.Epoch
	case offset < r.start.Offset || offset > r.Position():
		return -1
	}
	return r.l.epochOf(offset - 1)
}

// TestStartDivergedBelowCommitted: the partition's previous owner read
// intents 0-4 under leader epoch 1 and committed 5; while no loop of it
// ran, an unclean leader election cut the log at 2 and new intents took
// offsets 2-4 under epoch 2. The committed offset carried no epoch: the
// new loop started at 5 and silently passed the new intents
// (acknowledged writes without events). It now starts at the offset and
// its epoch, the log reports the divergence, and the loop lowers the
// commit to 2, publishes the new intents, logs an error naming reconcile
// and raises the partition's truncated condition.
func TestStartDivergedBelowCommitted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "startdiv")
	env.write(ctx, t, "a", 1, "a1")
	env.write(ctx, t, "b", 1, "b1")
	for _, k := range []string{"n1", "n2", "n3"} {
		env.write(ctx, t, k, 1, k) // the new intents at the lost offsets
	}
	log := newEpochLog(env.log)
	log.diverge(2)
	if err := log.CommitEpochs(ctx, "g", intent.Topic(env.tb.Name), map[int32]intentlog.EpochOffset{0: {Offset: 5, Epoch: 1}}); err != nil {
		t.Fatal(err)
	}
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	sink := &lockedSink{}
	cfg.Health = sink
	run := start(ctx, New(log, env.st, env.bus, cfg), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "events for the new intents below the committed offset", func() bool {
		last, err := env.bus.LastVersions(ctx, env.tb.Name, 0, time.Time{})
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		return last["n1"] == 1 && last["n2"] == 1 && last["n3"] == 1
	})
	if !strings.Contains(logs.String(), "wail table reconcile startdiv") {
		t.Fatalf("the truncation not logged with reconcile:\n%s", logs)
	}
	var raised bool
	for _, c := range sink.get() {
		raised = raised || (c.component == "resolver/startdiv/0/truncated" && !c.cleared)
	}
	if !raised {
		t.Fatalf("no truncation condition: %+v", sink.get())
	}
	// The commit carries the epoch of the intent before it, as read.
	waitUntil(ctx, t, "offset 5 committed with epoch 2", func() bool {
		return log.committedEpoch(0) == intentlog.EpochOffset{Offset: 5, Epoch: 2}
	})
}

// TestStartEpochUnknown: the partition's previous owner read intents 0-4
// and committed 5 with their leader epoch; when the next loop starts, the
// log has no record of that epoch (Kafka answers UNDEFINED_EPOCH_OFFSET:
// the leader-epoch history was lost, or the topic is another one of that
// name), so whether it diverged below 5 is not known. The loop failed its
// first read and restarted for ever (franz-go alone kept the offset: it
// read on from 5, skipping new intents below it). It now reads again
// from the log's start (the versions published before make that
// harmless), so that new intents at 2-4 get their events, and says so,
// naming reconcile.
func TestStartEpochUnknown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "startunk")
	env.write(ctx, t, "a", 1, "a1")
	env.write(ctx, t, "b", 1, "b1")
	for _, k := range []string{"n1", "n2", "n3"} {
		env.write(ctx, t, k, 1, k) // new intents at offsets the old log had too
	}
	log := newEpochLog(env.log)
	log.unknown = true
	if err := log.CommitEpochs(ctx, "g", intent.Topic(env.tb.Name), map[int32]intentlog.EpochOffset{0: {Offset: 5, Epoch: 1}}); err != nil {
		t.Fatal(err)
	}
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	run := start(ctx, New(log, env.st, env.bus, cfg), env.tb)
	defer run.stop(t)
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	}()
	waitUntil(ctx, t, "events for the intents below the committed offset", func() bool {
		last, err := env.bus.LastVersions(ctx, env.tb.Name, 0, time.Time{})
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		return last["n1"] == 1 && last["n2"] == 1 && last["n3"] == 1
	})
	if l := logs.String(); !strings.Contains(l, "wail table reconcile startunk") || !strings.Contains(l, "cannot be validated") {
		t.Fatalf("the unknown epoch not logged with reconcile:\n%s", l)
	}
}

// TestNextOwnerFindsDivergence: a loop reads intents 0-4 under epoch 1
// and commits 5 with that epoch; it stops (the process restarts, or the
// partition is handed over, also while a loop waited to lower its commit
// after a truncation: that error went with it) before it finds that the
// log diverged at 2. The next loop finds the divergence from the
// committed epoch, lowers the commit to 2 and says so.
func TestNextOwnerFindsDivergence(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "nextowner")
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		env.write(ctx, t, k, 1, k)
	}
	log := newEpochLog(env.log)
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	run := start(ctx, New(log, env.st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "offset 5 committed with epoch 1", func() bool {
		return log.committedEpoch(0) == intentlog.EpochOffset{Offset: 5, Epoch: 1}
	})
	run.stop(t)
	log.diverge(2)
	sink := &lockedSink{}
	cfg.Health = sink
	run = start(ctx, New(log, env.st, env.bus, cfg), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "the divergence below the committed offset found", func() bool {
		for _, c := range sink.get() {
			if c.component == "resolver/nextowner/0/truncated" && strings.Contains(c.reason, "diverges from offset 2") {
				return true
			}
		}
		return false
	})
	if !strings.Contains(logs.String(), "wail table reconcile nextowner") {
		t.Fatalf("the truncation not logged with reconcile:\n%s", logs)
	}
	waitUntil(ctx, t, "offset 5 committed with the new epoch", func() bool {
		return log.committedEpoch(0) == intentlog.EpochOffset{Offset: 5, Epoch: 2}
	})
}

// epochGroup is an EpochGroup that assigns partition 0 of its first topic
// at join and keeps the offsets it commits, with their epochs.
type epochGroup struct {
	mu      sync.Mutex
	offsets map[int32]intentlog.EpochOffset
}

func (g *epochGroup) AddTopics(...string)         {}
func (g *epochGroup) Close(context.Context) error { return nil }
func (g *epochGroup) Shards() int                 { return 1 }
func (g *epochGroup) Transact(context.Context, int, map[string][]*intentlog.Record, map[string]map[int32]int64) error {
	panic("an EpochGroup is asked TransactEpochs")
}

func (g *epochGroup) TransactEpochs(_ context.Context, _ int, _ map[string][]*intentlog.Record, offsets map[string]map[int32]intentlog.EpochOffset) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, parts := range offsets {
		for p, o := range parts {
			g.offsets[p] = o
		}
	}
	return nil
}

func (g *epochGroup) committed() intentlog.EpochOffset {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.offsets[0]
}

// TestGroupCommitsEpochs: in a group (Kafka) the offsets go in the
// transactions; they carry the epoch of the intent before them too.
func TestGroupCommitsEpochs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "groupepoch")
	for _, k := range []string{"a", "b", "c"} {
		env.write(ctx, t, k, 1, k)
	}
	log := newEpochLog(env.log)
	g := &epochGroup{offsets: map[int32]intentlog.EpochOffset{}}
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Join = func(topics []string, assigned, _ func(map[string][]int32)) (Group, error) {
		assigned(map[string][]int32{topics[0]: {0}})
		return g, nil
	}
	run := start(ctx, New(log, env.st, env.bus, cfg), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "offset 3 committed with epoch 1", func() bool {
		return g.committed() == intentlog.EpochOffset{Offset: 3, Epoch: 1}
	})
}

// TestCommitsBeforeTheReader: the commits a partition makes when it
// starts, before its reader read anything, carry the epoch known for
// their offset: where the log diverged (from a truncation), the new
// leader's epoch there, so that the next owner validates the new intents
// as they are; the start of the log when the committed offset was beyond
// its end, none (-1: no intent before it was read, and a made-up epoch
// would have the next start validated against an epoch the log may not
// hold there).
func TestCommitsBeforeTheReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		intents   int
		committed intentlog.EpochOffset // before the start
		diverged  int64                 // < 0: not
		lowered   int64                 // the offset the start commits
		epoch     int32                 // and its epoch
	}{
		// The reader validates the committed epoch at its first read:
		// before the loop runs when intents follow the committed offset,
		// else in the loop (its final commit is lowered).
		{"lowered to where the log diverged, found at the start", 7, intentlog.EpochOffset{Offset: 5, Epoch: 1}, 2, 2, 2},
		{"lowered to where the log diverged, found by the loop", 5, intentlog.EpochOffset{Offset: 5, Epoch: 1}, 2, 2, 2},
		{"lowered to the log's start, where it diverged", 5, intentlog.EpochOffset{Offset: 5, Epoch: 1}, 0, 0, 2},
		{"lowered from beyond the log's end", 5, intentlog.EpochOffset{Offset: 10, Epoch: 1}, -1, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			env := newTestEnv(ctx, t, "epochstart")
			for i := range tc.intents {
				env.write(ctx, t, fmt.Sprint("k", i), 1, "v")
			}
			log := newEpochLog(newPastEndCommits(env.log)) // (a committed offset beyond the end: Kafka's)
			if tc.diverged >= 0 {
				log.diverge(tc.diverged)
			}
			if err := log.CommitEpochs(ctx, "g", intent.Topic(env.tb.Name), map[int32]intentlog.EpochOffset{0: tc.committed}); err != nil {
				t.Fatal(err)
			}
			logger, _ := testLogger()
			run := start(ctx, New(log, env.st, env.bus, testConfig(logger, nil)), env.tb)
			defer run.stop(t)
			waitUntil(ctx, t, "the events of the intents from the lowered offset on", func() bool {
				return len(onBus(ctx, t, env)) == tc.intents-int(tc.lowered)
			})
			got := log.commitsAt(tc.lowered)
			if len(got) == 0 {
				t.Fatalf("offset %d never committed (commits %v)", tc.lowered, log.history)
			}
			for _, e := range got {
				if e != tc.epoch {
					t.Fatalf("offset %d committed with epochs %v, want %d (commits %v)", tc.lowered, got, tc.epoch, log.history)
				}
			}
		})
	}
}

// readerEpochs is an intentlog.EpochReader whose records below an offset
// have one epoch, those at or above it the next (EpochBefore only).
type readerEpochs struct {
	intentlog.EpochReader
	change int64
}

func (r readerEpochs) EpochBefore(offset int64) int32 {
	if offset <= r.change {
		return 3
	}
	return 4
}

// TestEpochSourceAt: the epoch committed with an offset is the one where
// the log diverged for that offset only, else the reader's, else -1.
func TestEpochSourceAt(t *testing.T) {
	t.Parallel()
	none := intentlog.EpochOffset{Offset: -1, Epoch: -1}
	for _, tc := range []struct {
		name   string
		s      *epochSource
		offset int64
		want   int32
	}{
		{"no source", nil, 5, -1},
		{"no reader, nothing known", &epochSource{known: none}, 5, -1},
		{"no reader, at the divergence", &epochSource{known: intentlog.EpochOffset{Offset: 5, Epoch: 2}}, 5, 2},
		{"no reader, past the divergence", &epochSource{known: intentlog.EpochOffset{Offset: 5, Epoch: 2}}, 6, -1},
		{"reader, at the divergence", &epochSource{rd: readerEpochs{change: 7}, known: intentlog.EpochOffset{Offset: 5, Epoch: 2}}, 5, 2},
		{"reader, past the divergence", &epochSource{rd: readerEpochs{change: 7}, known: intentlog.EpochOffset{Offset: 5, Epoch: 2}}, 9, 4},
		{"reader, before its change", &epochSource{rd: readerEpochs{change: 7}, known: none}, 6, 3},
		{"reader, offset 0, nothing known", &epochSource{rd: readerEpochs{change: 7}, known: none}, 0, 3},
		// the log diverged at its first offset: no intent before it, no
		// epoch, whatever the reader read before
		{"reader, diverged at offset 0", &epochSource{rd: readerEpochs{change: 7}, known: intentlog.EpochOffset{Offset: 0, Epoch: -1}}, 0, -1},
	} {
		if got := tc.s.at(tc.offset); got.Offset != tc.offset || got.Epoch != tc.want {
			t.Errorf("%s: at(%d) = %+v, want epoch %d", tc.name, tc.offset, got, tc.want)
		}
	}
}
