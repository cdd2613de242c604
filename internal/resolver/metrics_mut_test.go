package resolver

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestPartitionMetricsLevels: a partition's reads and read latency have
// one series per read level of its store, and no more.
func TestPartitionMetricsLevels(t *testing.T) {
	t.Parallel()
	for _, levels := range []int{1, 2, 3} {
		reg := prometheus.NewRegistry()
		pm := NewMetrics(reg).partition("t", 0, levels)
		if len(pm.reads) != levels || len(pm.readTime) != levels {
			t.Errorf("levels %d: %d read counters, %d read timers", levels, len(pm.reads), len(pm.readTime))
		}
		for _, name := range []string{"wail_resolver_reads_total", "wail_resolver_read_seconds"} {
			if n, err := testutil.GatherAndCount(reg, name); err != nil || n != levels {
				t.Errorf("levels %d: %d series of %s (%v), want %d", levels, n, name, err, levels)
			}
		}
	}
}

// TestObserveRead: a read counts at its level (with its time) and, when it
// failed, as an error; a level the partition has no series for (not one
// of its store's) counts only the error.
func TestObserveRead(t *testing.T) {
	t.Parallel()
	fail := errors.New("read failed")
	for _, c := range []struct {
		name   string
		level  int
		err    error
		reads  [2]float64
		errors float64
	}{
		{name: "level 0", level: 0, reads: [2]float64{1, 0}},
		{name: "level 1 failed", level: 1, err: fail, reads: [2]float64{0, 1}, errors: 1},
		{name: "beyond the levels", level: 2},
		{name: "beyond the levels, failed", level: 2, err: fail, errors: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pm := NewMetrics(nil).partition("t", 0, 2)
			pm.observeRead(c.level, ReadResult{Err: c.err, Took: time.Second})
			reads := [2]float64{testutil.ToFloat64(pm.reads[0]), testutil.ToFloat64(pm.reads[1])}
			if reads != c.reads || testutil.ToFloat64(pm.readErrors) != c.errors {
				t.Errorf("reads %v, errors %v; want %v, %v", reads, testutil.ToFloat64(pm.readErrors), c.reads, c.errors)
			}
		})
	}
}

// TestRetriesAndLetterKinds: retries count per kind, and a dead letter
// counts under its own kind.
func TestRetriesAndLetterKinds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		read, publish int
		letter        LetterKind
		want          [4]float64 // read and publish retries, read and publish letters
	}{
		{read: 2, letter: LetterRead, want: [4]float64{2, 0, 1, 0}},
		{publish: 3, letter: LetterPublish, want: [4]float64{0, 3, 0, 1}},
		{read: 1, publish: 1, letter: LetterPublish, want: [4]float64{1, 1, 0, 1}},
		{letter: LetterRead, want: [4]float64{0, 0, 1, 0}},
	} {
		pm := NewMetrics(nil).partition("t", 0, 1)
		pm.retries(c.read, c.publish)
		pm.deadLetters(c.letter).Inc()
		got := [4]float64{testutil.ToFloat64(pm.readRetries), testutil.ToFloat64(pm.pubRetries),
			testutil.ToFloat64(pm.readLetters), testutil.ToFloat64(pm.pubLetters)}
		if got != c.want {
			t.Errorf("retries(%d, %d), letter %v: %v, want %v", c.read, c.publish, c.letter, got, c.want)
		}
	}
}

// TestObserveEventWithoutReads: an event resolved without a read of its
// own counts, with its intents and latency, but adds nothing to the
// per-read histograms; one with reads adds to each.
func TestObserveEventWithoutReads(t *testing.T) {
	t.Parallel()
	now := time.Now()
	e := &intent.Event{CoveredIntents: 2, IntentAt: now.Add(-time.Second), ResolvedAt: now.Add(-time.Millisecond)}
	for _, c := range []struct {
		name  string
		st    EventStats
		reads uint64 // samples in each per-read histogram
	}{
		{name: "no read of its own"},
		{name: "read", st: EventStats{Reads: 2, FirstRead: now.Add(-time.Second / 2), FirstCreated: now.Add(-time.Second)}, reads: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			pm := NewMetrics(reg).partition("t", 0, 1)
			pm.observeEvent(e, c.st, now)
			if n := testutil.ToFloat64(pm.events); n != 1 {
				t.Errorf("events %v, want 1", n)
			}
			for name, want := range map[string]uint64{
				"wail_resolver_intents_per_event":       1,
				"wail_resolver_intent_to_event_seconds": 1,
				"wail_resolver_reads_per_event":         c.reads,
				"wail_resolver_first_read_wait_seconds": c.reads,
				"wail_resolver_resolve_seconds":         c.reads,
				"wail_resolver_publish_seconds":         c.reads,
			} {
				m := metric(t, reg, name, map[string]string{"table": "t"})
				if got := m.GetHistogram().GetSampleCount(); got != want {
					t.Errorf("%s: %d samples, want %d", name, got, want)
				}
			}
		})
	}
}
