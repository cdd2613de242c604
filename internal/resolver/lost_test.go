package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/reconcile"
)

// TestLostToRepairIsLoud: damaged bytes in the intent log, removed by
// `wail log repair`, take unresolved intents with them: acknowledged
// writes whose keys get no event. The resolver writes a gap letter for the
// lost offsets (once, also across a restart before its commit passed
// them), logs an error naming reconcile and counts it; reconcile then
// publishes the keys behind, and the last event of every key equals the
// store's state again (invariant 4).
func TestLostToRepairIsLoud(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	env := newTestEnvWith(ctx, t, "lost", embedded.Options{SegmentBytes: 1024, Logger: quiet}, intentlog.TopicOptions{})
	topic := intent.Topic("lost")
	// Resolved: every key's first version.
	const keys = 30
	version := uint64(0)
	for i := 0; i < keys; i++ {
		version++
		env.write(ctx, t, fmt.Sprintf("k%02d", i), version, "v1")
	}
	logger, _ := testLogger()
	run := start(ctx, New(env.log, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "the first versions resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == keys })
	run.stop(t)
	// Not resolved yet: every key's second version.
	for i := 0; i < keys; i++ {
		version++
		env.write(ctx, t, fmt.Sprintf("k%02d", i), version, "v2")
	}

	// Damage a sealed segment in the middle of the unresolved intents,
	// then repair as an operator does (the log closed).
	if err := env.log.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(env.logDir, topic, "0", "*.log"))
	if err != nil || len(segs) < 4 {
		t.Fatalf("segments %v, %v: want several", segs, err)
	}
	sort.Strings(segs)
	var victim string
	for _, s := range segs[:len(segs)-1] {
		var base int64
		fmt.Sscanf(filepath.Base(s), "%d.log", &base)
		if base >= keys {
			victim = s
			break
		}
	}
	if victim == "" {
		t.Fatalf("no sealed segment among the unresolved intents: %v", segs)
	}
	damage(t, victim)
	rep, err := embedded.Repair(env.logDir, embedded.Options{Logger: quiet})
	if err != nil || len(rep.Lost) == 0 {
		t.Fatalf("repair: %+v, %v; want offsets lost", rep, err)
	}
	lostKeys := map[string]bool{}
	for _, g := range rep.Lost {
		if g.From < keys || g.To <= g.From || g.To > 2*keys {
			t.Fatalf("repair lost %+v; want a range of the unresolved intents [%d, %d)", g, keys, 2*keys)
		}
		for o := g.From; o < g.To; o++ {
			lostKeys[fmt.Sprintf("k%02d", o-keys)] = true
		}
	}
	env.openLog(t)

	// A resolver that records the gap but crashes before its commit
	// passes it, then one that goes on: one gap letter per lost range.
	frozen := &commitFreezer{Log: env.log, frozen: true}
	logger, logs := testLogger()
	r := New(frozen, env.st, env.bus, testConfig(logger, NewMetrics(nil)))
	run = start(ctx, r, env.tb)
	waitUntil(ctx, t, "the gap letters written", func() bool { return len(readLetters(ctx, t, env.log, "lost")) == len(rep.Lost) })
	run.stop(t)
	r2 := New(env.log, env.st, env.bus, testConfig(logger, NewMetrics(nil)))
	run = start(ctx, r2, env.tb)
	defer func() {
		if run != nil {
			run.stop(t)
		}
	}()
	waitUntil(ctx, t, "the rest resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 2*keys })

	ls := readLetters(ctx, t, env.log, "lost")
	if len(ls) != len(rep.Lost) {
		t.Fatalf("%d dead letters, want %d (one per lost range): %v", len(ls), len(rep.Lost), ls)
	}
	var lostIntents int64
	for i, l := range ls {
		g := rep.Lost[i]
		if l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP || l.GapStartOffset != g.From || l.GapEndOffset != g.To ||
			!strings.Contains(l.Error, "wail log repair") {
			t.Errorf("letter %v, want a gap [%d, %d) naming the repair", l, g.From, g.To)
		}
		lostIntents += g.To - g.From
	}
	if n := testutil.ToFloat64(r.cfg.Metrics.gapIntents.WithLabelValues("lost")); n != float64(lostIntents) {
		t.Errorf("gap_intents_total = %v, want %d", n, lostIntents)
	}
	if n := testutil.ToFloat64(r2.cfg.Metrics.letters.WithLabelValues("lost", "gap")); n != 0 {
		t.Errorf("the second resolver wrote %v gap letters again", n)
	}
	if !strings.Contains(logs.String(), "wail table reconcile lost") {
		t.Errorf("no error log naming reconcile:\n%s", logs)
	}

	// The lost intents' keys are behind: their last event is older than
	// the store (invariant 4 broken), the others are not.
	behind := func() map[string]bool {
		last := lastEvents(ctx, t, env)
		out := map[string]bool{}
		for i := 0; i < keys; i++ {
			k := fmt.Sprintf("k%02d", i)
			row, found, err := env.st.Get(ctx, "lost", []byte(k), 0)
			if err != nil || !found {
				t.Fatalf("store: %s: %v, %v", k, found, err)
			}
			if last[k] != row.Version {
				out[k] = true
			}
		}
		return out
	}
	if got := behind(); fmt.Sprint(got) != fmt.Sprint(lostKeys) {
		t.Fatalf("keys behind the store %v, want those of the lost intents %v", got, lostKeys)
	}
	report, err := reconcile.Run(ctx, reconcile.Options{Log: env.log, Bus: env.bus, Store: env.st, Group: "g", Horizon: time.Minute},
		reconcile.Table{Name: "lost", Partitions: 1}, nil)
	if err != nil || report.Behind != int64(len(lostKeys)) {
		t.Fatalf("reconcile: %+v, %v; want %d keys behind", report, err, len(lostKeys))
	}
	_, end, err := env.log.Bounds(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "reconcile's intents resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == end })
	run.stop(t)
	run = nil
	if got := behind(); len(got) != 0 {
		t.Fatalf("after reconcile, keys whose last event is not the store's state: %v", got)
	}
}

// damage flips a byte in the middle of a segment file.
func damage(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 100 {
		t.Fatalf("%s: %d bytes, %v", path, len(b), err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastEvents returns each key's last event version on the bus.
func lastEvents(ctx context.Context, t *testing.T, env *testEnv) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, r := range readTopic(ctx, t, env.log, eventbus.Topic(env.tb.Name)) {
		if r.Value == nil {
			continue
		}
		e, err := intent.UnmarshalEvent(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[string(r.Key)] = e.Version
	}
	return out
}

// lostLog reports lost ranges of every partition.
type lostLog struct {
	Log
	lost []intentlog.Range
}

func (l lostLog) Lost(context.Context, string, int32) ([]intentlog.Range, error) { return l.lost, nil }

// letterSink is a publisher that keeps the letters and commits it gets.
type letterSink struct {
	publisher
	written []*wailv1.DeadLetter
	commits []int64
}

func (s *letterSink) letters(_ context.Context, ls []*wailv1.DeadLetter, _ int64) (bool, error) {
	s.written = append(s.written, ls...)
	return false, nil
}

func (s *letterSink) commit(_ context.Context, offset int64) error {
	s.commits = append(s.commits, offset)
	return nil
}

// TestRecordLost: each lost range from the committed offset on is a gap
// letter, from the committed offset when it lies inside; a range before
// it (resolved before it was lost) or recorded before is not; the
// committed offset does not move.
func TestRecordLost(t *testing.T) {
	t.Parallel()
	lost := []intentlog.Range{{From: 10, To: 20}, {From: 30, To: 40}, {From: 50, To: 60}}
	cases := []struct {
		name      string
		committed int64
		recorded  map[int64]int64 // gap letters found in the dead-letter topic
		want      string
	}{
		{name: "all ahead", committed: 0, want: "[10,20) [30,40) [50,60)"},
		{name: "the first ends at the committed offset", committed: 20, want: "[30,40) [50,60)"},
		{name: "the committed offset inside one", committed: 35, want: "[35,40) [50,60)"},
		{name: "at the start of one", committed: 30, want: "[30,40) [50,60)"},
		{name: "one recorded before", committed: 35, recorded: map[int64]int64{35: 40}, want: "[50,60)"},
		{name: "a record of another range", committed: 0, recorded: map[int64]int64{10: 19}, want: "[10,20) [30,40) [50,60)"},
		{name: "all behind", committed: 60, want: ""},
	}
	for _, c := range cases {
		logger, logs := testLogger()
		r := New(lostLog{lost: lost}, nil, nil, Config{Logger: logger, Metrics: NewMetrics(nil)})
		sink := &letterSink{}
		if err := r.recordLost(context.Background(), sink, "t", 2, c.committed, lettersFound{gaps: c.recorded}); err != nil {
			t.Fatal(err)
		}
		var got []string
		var n int64
		for _, d := range sink.written {
			if d.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP || d.Partition != 2 || !strings.Contains(d.Error, "wail log repair") {
				t.Errorf("%s: letter %v", c.name, d)
			}
			got = append(got, fmt.Sprintf("[%d,%d)", d.GapStartOffset, d.GapEndOffset))
			n += d.GapEndOffset - d.GapStartOffset
		}
		if strings.Join(got, " ") != c.want || len(sink.commits) != 0 {
			t.Errorf("%s: letters %v, commits %v; want %s and none", c.name, got, sink.commits, c.want)
		}
		if m := testutil.ToFloat64(r.cfg.Metrics.gapIntents.WithLabelValues("t")); m != float64(n) {
			t.Errorf("%s: gap_intents_total %v, want %d", c.name, m, n)
		}
		if logged := strings.Count(logs.String(), "wail table reconcile t"); logged != len(got) {
			t.Errorf("%s: %d error logs naming reconcile, want %d", c.name, logged, len(got))
		}
	}
}
