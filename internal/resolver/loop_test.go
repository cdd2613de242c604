package resolver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// testLoop is a loop of partition 0 of table "t" that is never run: its
// helpers are called directly.
func testLoop(t *testing.T, cfg Config, st Store) *loop {
	t.Helper()
	r := New(nil, st, nil, cfg)
	l := newLoop(r, "t", 0, NewCore(Params{Table: "t", Window: time.Minute, Levels: 1}, 0, nil))
	l.m = r.cfg.Metrics.partition("t", 0, 1)
	t.Cleanup(func() { close(l.done) })
	return l
}

// TestLagSeconds: the lag is the age of the oldest unresolved intent, or
// of the last intent read while the log's end is ahead of the reader,
// whichever is older; 0 when caught up with nothing unresolved, and never
// negative (a proxy clock ahead of ours).
func TestLagSeconds(t *testing.T) {
	t.Parallel()
	now := t0.Add(10 * time.Second)
	sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		name        string
		unresolved  time.Time // creation of an unresolved intent (zero: none)
		end         int64     // the log's end; the reader is past offset 0 when there is an intent
		lastCreated time.Time
		want        float64
	}{
		{name: "caught up, nothing unresolved", end: 0, lastCreated: sec(0), want: 0},
		{name: "behind, nothing unresolved: the last intent read", end: 5, lastCreated: sec(0), want: 10},
		{name: "at the end: the last intent read does not count", unresolved: sec(2), end: 1, lastCreated: sec(0), want: 8},
		{name: "behind: the older of the two (the unresolved one)", unresolved: sec(2), end: 5, lastCreated: sec(5), want: 8},
		{name: "behind: the older of the two (the last read)", unresolved: sec(5), end: 5, lastCreated: sec(2), want: 8},
		{name: "a creation in the future is no lag", end: 5, lastCreated: sec(15), want: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			if !c.unresolved.IsZero() {
				e := put(0, "a", 0)
				e.Intent.Version, e.Intent.CreatedAt = ver(0, 0), c.unresolved
				l.core.Ingest(now, []Entry{e})
				if l.core.Unresolved() != 1 || l.core.Next() != 1 {
					t.Fatalf("setup: %d unresolved, next %d", l.core.Unresolved(), l.core.Next())
				}
			}
			l.end, l.lastCreated = c.end, c.lastCreated
			if got := l.lagSeconds(now); got != c.want {
				t.Fatalf("lag %v s, want %v", got, c.want)
			}
		})
	}
}

// TestIngestLastCreated: the lag's last intent read is the last valid
// record of a batch, the first record included.
func TestIngestLastCreated(t *testing.T) {
	t.Parallel()
	rec := func(off int64, key string, created time.Time) intentlog.Record {
		in := intent.Intent{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: ver(0, uint64(off)), CreatedAt: created}
		b, err := in.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return intentlog.Record{Offset: off, Key: in.Key, Value: b}
	}
	bad := func(off int64) intentlog.Record { return intentlog.Record{Offset: off, Value: []byte("not an intent")} }
	c1, c2 := t0.Add(time.Second), t0.Add(2*time.Second)
	cases := []struct {
		name string
		recs []intentlog.Record
		want time.Time
	}{
		{name: "one record", recs: []intentlog.Record{rec(0, "a", c1)}, want: c1},
		{name: "the last of two", recs: []intentlog.Record{rec(0, "a", c1), rec(1, "b", c2)}, want: c2},
		{name: "the last valid one", recs: []intentlog.Record{rec(0, "a", c1), bad(1)}, want: c1},
		{name: "none valid", recs: []intentlog.Record{bad(0)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			l.ingest(c.recs)
			if !l.lastCreated.Equal(c.want) {
				t.Fatalf("last created %v, want %v", l.lastCreated, c.want)
			}
			if l.core.Next() != int64(len(c.recs)) {
				t.Fatalf("the core ingested up to %d, want %d", l.core.Next(), len(c.recs))
			}
		})
	}
}

// limiter answers AppendLimit as told.
type limiter struct {
	n   int
	err error
}

func (l limiter) AppendLimit(context.Context, string) (int, error) { return l.n, l.err }

// TestAppendLimit: the log's limit when it tells one, else the default
// (no limiter, an error, or a limit that is no limit).
func TestAppendLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		limits AppendLimiter
		want   int
	}{
		{name: "no limiter", want: DefaultAppendBytes},
		{name: "a limit", limits: limiter{n: 500}, want: 500},
		{name: "one byte", limits: limiter{n: 1}, want: 1},
		{name: "zero", limits: limiter{n: 0}, want: DefaultAppendBytes},
		{name: "negative", limits: limiter{n: -1}, want: DefaultAppendBytes},
		{name: "an error", limits: limiter{n: 500, err: errors.New("no metadata")}, want: DefaultAppendBytes},
	} {
		r := New(nil, nil, nil, Config{Limits: c.limits})
		if got := r.appendLimit(context.Background(), "topic"); got != c.want {
			t.Errorf("%s: limit %d, want %d", c.name, got, c.want)
		}
	}
}

// TestNextEvents: a batch of events takes the queue up to maxPublishBatch
// events and eventBytes of records, at least one event however large; a
// suspect key's event goes alone, and the others pass it.
func TestNextEvents(t *testing.T) {
	t.Parallel()
	evs := func(n int) []intent.Event {
		var out []intent.Event
		for i := range n {
			out = append(out, intent.Event{Table: "t", Key: fmt.Appendf(nil, "k%05d", i), Op: intent.Upsert, Version: uint64(i + 1), Value: []byte("v")})
		}
		return out
	}
	size := eventbus.Size(&evs(1)[0]) // every event of evs has this size
	cases := []struct {
		name    string
		queue   int
		bytes   int
		suspect []int // indexes of suspect keys
		want    []int // sizes of the batches taken one after the other
	}{
		{name: "the whole queue", queue: 3, bytes: DefaultAppendBytes, want: []int{3}},
		{name: "exactly two fit", queue: 3, bytes: 2 * size, want: []int{2, 1}},
		{name: "one byte short of two", queue: 3, bytes: 2*size - 1, want: []int{1, 1, 1}},
		{name: "one larger than the limit goes alone", queue: 2, bytes: size - 1, want: []int{1, 1}},
		{name: "maxPublishBatch", queue: maxPublishBatch + 1, bytes: 1 << 30, want: []int{maxPublishBatch, 1}},
		{name: "a suspect at the head goes alone", queue: 3, bytes: DefaultAppendBytes, suspect: []int{0}, want: []int{1, 2}},
		{name: "the others pass a suspect", queue: 3, bytes: DefaultAppendBytes, suspect: []int{1}, want: []int{2, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			l.pubQ, l.eventBytes = evs(c.queue), c.bytes
			for _, i := range c.suspect {
				l.suspect[string(l.pubQ[i].Key)] = true
			}
			var got []int
			var order []intent.Event
			for len(l.pubQ) > 0 && len(got) <= c.queue {
				b := l.nextEvents()
				got = append(got, len(b))
				order = append(order, b...)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("batches of %v events, want %v", got, c.want)
			}
			seen := map[string]bool{}
			for _, e := range order {
				if seen[string(e.Key)] {
					t.Fatalf("event of %s taken twice", e.Key)
				}
				seen[string(e.Key)] = true
			}
			if len(seen) != c.queue {
				t.Fatalf("%d events taken, want %d", len(seen), c.queue)
			}
		})
	}
}

// multiStub is a store.MultiGetter the tests never read.
type multiStub struct{ Store }

func (multiStub) GetMany(context.Context, string, [][]byte, store.Level) ([]store.KeyRead, error) {
	return nil, errors.New("not read")
}

// TestNextReads: one read per job on a store that reads one key per call;
// on a MultiGetter the reads at the level of the first, up to maxReadBatch.
func TestNextReads(t *testing.T) {
	t.Parallel()
	reads := func(levels ...int) []ReadRequest {
		var out []ReadRequest
		for i, lv := range levels {
			out = append(out, ReadRequest{Key: fmt.Appendf(nil, "k%d", i), Level: store.Level(lv)})
		}
		return out
	}
	same := func(n int) []int { return make([]int, n) }
	cases := []struct {
		name   string
		multi  bool
		levels []int
		want   int
	}{
		{name: "one key per call", levels: []int{0, 0, 0}, want: 1},
		{name: "every read of one level", multi: true, levels: []int{0, 0, 0}, want: 3},
		{name: "up to the next level", multi: true, levels: []int{0, 0, 1, 0}, want: 2},
		{name: "one read", multi: true, levels: []int{1}, want: 1},
		{name: "maxReadBatch", multi: true, levels: same(maxReadBatch + 1), want: maxReadBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var st Store = multiStub{}
			if !c.multi {
				st = struct{ Store }{}
			}
			l := testLoop(t, Config{}, st)
			l.readQ = reads(c.levels...)
			got := l.nextReads()
			if len(got) != c.want || len(l.readQ) != len(c.levels) {
				t.Fatalf("%d reads in the job (queue left at %d), want %d (queue %d)", len(got), len(l.readQ), c.want, len(c.levels))
			}
			if cap(got) != len(got) {
				t.Fatalf("the job's reads can grow into the queue: cap %d, len %d", cap(got), len(got))
			}
		})
	}
}

// stubPublisher takes every job at once; with fail set, every append of
// events fails whole.
type stubPublisher struct {
	fail error
}

func (p stubPublisher) events(_ context.Context, evs []intent.Event, _ int64, _ bool) pubResult {
	if p.fail != nil {
		return pubResult{failed: evs, err: p.fail}
	}
	return pubResult{}
}

func (stubPublisher) letters(context.Context, []*wailv1.DeadLetter, int64) (bool, error) {
	return false, nil
}
func (stubPublisher) commit(context.Context, int64) error { return nil }

// takeJobs starts jobs until none is left and returns them, each finished
// by the publisher (not by the loop: the core is not told).
func takeJobs(t *testing.T, l *loop) []*pubJob {
	t.Helper()
	var out []*pubJob
	for range 10000 {
		l.startJob()
		if l.job == nil {
			return out
		}
		out = append(out, <-l.jobDone)
		l.job = nil
	}
	t.Fatal("jobs never end")
	return nil
}

// TestLetterBatches: a job of dead letters takes up to maxLetterBatch
// letters and letterBytes of records, at least one letter however large.
func TestLetterBatches(t *testing.T) {
	t.Parallel()
	letters := func(n int) []Letter {
		var out []Letter
		for i := range n {
			k := fmt.Appendf(nil, "k%05d", i)
			out = append(out, Letter{ID: uint64(i + 1), Key: k, Kind: LetterRead, Err: "boom", Attempts: 1,
				Intents: []intent.Intent{{Table: "t", Key: k, Op: intent.Upsert, Version: ver(0, 0), CreatedAt: t0}}, Offsets: []int64{int64(i)}})
		}
		return out
	}
	probe := testLoop(t, Config{}, nil)
	ds := probe.deadLetters(&letters(1)[0], time.Now())
	if len(ds) != 1 {
		t.Fatalf("a letter of one intent makes %d records", len(ds))
	}
	size := letterBytes(ds[0]) // every letter of letters has this size
	cases := []struct {
		name    string
		letters int
		bytes   int
		want    []int
	}{
		{name: "all of them", letters: 3, bytes: DefaultAppendBytes, want: []int{3}},
		{name: "exactly two fit", letters: 3, bytes: 2 * size, want: []int{2, 1}},
		{name: "one byte short of two", letters: 3, bytes: 2*size - 1, want: []int{1, 1, 1}},
		{name: "one larger than the limit goes alone", letters: 2, bytes: size - 1, want: []int{1, 1}},
		{name: "maxLetterBatch", letters: maxLetterBatch + 1, bytes: 1 << 30, want: []int{maxLetterBatch, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			l.pub = stubPublisher{}
			l.letterQ, l.letterBytes = letters(c.letters), c.bytes
			var got []int
			for _, j := range takeJobs(t, l) {
				if len(j.records) != len(j.letters) {
					t.Fatalf("a job of %d letters carries %d records", len(j.letters), len(j.records))
				}
				got = append(got, len(j.letters))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("jobs of %v letters, want %v", got, c.want)
			}
		})
	}
}

// TestJobKinds: a due commit goes first (when the committed offset moved),
// then the letters, then the events; an event goes apart only alone and
// of a suspect key.
func TestJobKinds(t *testing.T) {
	t.Parallel()
	ev := func(k string) intent.Event {
		return intent.Event{Table: "t", Key: []byte(k), Op: intent.Upsert, Version: 1, Value: []byte("v")}
	}
	kind := func(j *pubJob) string {
		switch {
		case j.commitOnly:
			return fmt.Sprintf("commit@%d", j.offset)
		case len(j.letters) > 0:
			return fmt.Sprintf("letters:%d", len(j.letters))
		case j.apart:
			return fmt.Sprintf("apart:%s", keysOf(j.events))
		}
		return fmt.Sprintf("events:%s", keysOf(j.events))
	}
	cases := []struct {
		name    string
		moved   bool // the committed offset moved since the last commit
		due     bool
		letters int
		events  []string
		suspect []string
		want    string
	}{
		{name: "nothing to do", want: "[]"},
		{name: "a due commit that did not move", due: true, want: "[]"},
		{name: "a commit that moved but is not due", moved: true, events: []string{"a"}, want: "[events:a]"},
		{name: "a due commit first", moved: true, due: true, letters: 1, events: []string{"a"}, want: "[commit@1 letters:1 events:a]"},
		{name: "letters before events", letters: 2, events: []string{"a", "b"}, want: "[letters:2 events:a,b]"},
		{name: "a suspect's event alone is apart", events: []string{"a", "b"}, suspect: []string{"a"}, want: "[apart:a events:b]"},
		{name: "a lone event of a key not suspect is not apart", events: []string{"a"}, want: "[events:a]"},
		{name: "events of suspects in one batch are not apart", events: []string{"b", "c"}, suspect: []string{"a"}, want: "[events:b,c]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			l.pub = stubPublisher{}
			if c.moved {
				l.core.Ingest(t0, []Entry{{Offset: 0, Invalid: true}})
				if l.core.Committed() != 1 {
					t.Fatalf("setup: committed %d", l.core.Committed())
				}
			}
			l.commitDue = c.due
			for i := range c.letters {
				k := fmt.Appendf(nil, "l%d", i)
				l.letterQ = append(l.letterQ, Letter{ID: uint64(i + 1), Key: k, Kind: LetterPublish,
					Intents: []intent.Intent{{Table: "t", Key: k, Op: intent.Upsert, Version: 1}}, Offsets: []int64{int64(i)}})
			}
			for _, k := range c.events {
				l.pubQ = append(l.pubQ, ev(k))
			}
			for _, k := range c.suspect {
				l.suspect[k] = true
			}
			var got []string
			for _, j := range takeJobs(t, l) {
				got = append(got, kind(j))
			}
			if fmt.Sprint(got) != c.want && !(len(got) == 0 && c.want == "[]") {
				t.Fatalf("jobs %v, want %v", got, c.want)
			}
			if len(got) > 0 && l.commitDue {
				t.Fatal("a job started but the commit is still due")
			}
		})
	}
}

// TestFinished: what the loop keeps of a job's outcome: the committed
// offset, the error counters, and the suspect keys (an event that failed
// alone while others of its append landed; cleared by an event or a
// letter of the key that got through).
func TestFinished(t *testing.T) {
	t.Parallel()
	ev := func(k string) intent.Event {
		return intent.Event{Table: "t", Key: []byte(k), Op: intent.Upsert, Version: 1, Value: []byte("v")}
	}
	failAlone := func(k string) PublishFailure {
		return PublishFailure{Event: ev(k), Err: errors.New("refused"), Alone: true}
	}
	letter := func(k string) Letter {
		return Letter{ID: 1, Key: []byte(k), Kind: LetterRead, Intents: []intent.Intent{{Table: "t", Key: []byte(k), Version: 1}}, Offsets: []int64{0}}
	}
	errJob := errors.New("job failed")
	cases := []struct {
		name    string
		job     pubJob
		suspect []string // before
		// after
		commit                         int64
		wantSuspect                    string
		commitErrs, letterErrs, pubErr float64
		readLetters                    float64
	}{
		{name: "a commit", job: pubJob{commitOnly: true, offset: 5, committed: 5}, commit: 5},
		{name: "a failed commit", job: pubJob{commitOnly: true, offset: 5, committed: -1, err: errJob}, commitErrs: 1},
		{name: "an event failed alone while another landed", job: pubJob{events: []intent.Event{ev("a"), ev("b")}, committed: -1,
			ok: []intent.Event{ev("b")}, fails: []PublishFailure{failAlone("a")}}, wantSuspect: "a", pubErr: 1},
		{name: "an event failed alone, nothing landed", job: pubJob{events: []intent.Event{ev("a")}, committed: -1,
			fails: []PublishFailure{failAlone("a")}}, pubErr: 1},
		{name: "a suspect's event got through", suspect: []string{"a", "c"}, job: pubJob{events: []intent.Event{ev("a")}, committed: -1,
			ok: []intent.Event{ev("a")}}, wantSuspect: "c"},
		{name: "events with their offset", job: pubJob{events: []intent.Event{ev("a")}, offset: 3, committed: 3, ok: []intent.Event{ev("a")}}, commit: 3},
		{name: "a suspect's letter got through", suspect: []string{"a"}, job: pubJob{letters: []Letter{letter("a")}, committed: -1}, readLetters: 1},
		{name: "a failed letter", suspect: []string{"a"}, job: pubJob{letters: []Letter{letter("a")}, committed: -1, err: errJob},
			wantSuspect: "a", letterErrs: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			l.pub = stubPublisher{}
			for _, k := range c.suspect {
				l.suspect[k] = true
			}
			j := c.job
			l.job = &j
			l.finished(&j)
			var suspect []string
			for k := range l.suspect {
				suspect = append(suspect, k)
			}
			slices.Sort(suspect)
			if l.job != nil || l.commit != c.commit || strings.Join(suspect, ",") != c.wantSuspect {
				t.Fatalf("job %v, commit %d, suspect %q; want no job, %d, %q", l.job, l.commit, suspect, c.commit, c.wantSuspect)
			}
			got := [4]float64{testutil.ToFloat64(l.m.commitErrors), testutil.ToFloat64(l.m.letterErrors),
				testutil.ToFloat64(l.m.publishErrors), testutil.ToFloat64(l.m.readLetters)}
			if want := [4]float64{c.commitErrs, c.letterErrs, c.pubErr, c.readLetters}; got != want {
				t.Fatalf("commit errors, letter errors, publish errors, read letters %v, want %v", got, want)
			}
		})
	}
}

// TestHandleCounts: escalations are the reads above level 0 that are not
// probes; unmaterialized intents count one each.
func TestHandleCounts(t *testing.T) {
	t.Parallel()
	l := testLoop(t, Config{}, nil)
	l.pub, l.timer = stubPublisher{}, time.NewTimer(time.Hour)
	defer l.timer.Stop()
	l.handle(Ready{
		Reads: []ReadRequest{{Key: []byte("a"), Level: 0}, {Key: []byte("b"), Level: 1}, {Key: []byte("c"), Level: 2},
			{Key: []byte("p"), Level: 1, Probe: true}},
		Unmaterialized: []Unmaterialized{{Key: []byte("x"), Versions: []uint64{1, 2}}, {Key: []byte("y"), Versions: []uint64{3}}},
		Commit:         -1,
	})
	if n := testutil.ToFloat64(l.m.escalations); n != 2 {
		t.Errorf("%v escalations, want 2", n)
	}
	if n := testutil.ToFloat64(l.m.unmaterialized); n != 3 {
		t.Errorf("%v unmaterialized intents, want 3", n)
	}
	if len(l.readQ) != 4 {
		t.Errorf("%d reads queued, want 4", len(l.readQ))
	}
}

// TestReadsDone: the results of a job leave the reads in flight, go to the
// core, and only failed ones are logged.
func TestReadsDone(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		logs int
	}{
		{name: "read", logs: 0},
		{name: "failed", err: errors.New("store down"), logs: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logger, buf := testLogger()
			l := testLoop(t, Config{Logger: logger}, nil)
			l.core.Ingest(t0, []Entry{put(0, "a", ver(0, 0))})
			rd := l.core.Ready()
			l.reads = 3
			l.readsDone([]ReadResult{{Key: []byte("a"), Seq: rd.Reads[0].Seq, Err: c.err, Found: c.err == nil, Row: store.Row{Version: ver(0, 0)}},
				{Key: []byte("stale"), Seq: 99}})
			if l.reads != 1 {
				t.Fatalf("%d reads in flight, want 1", l.reads)
			}
			if n := strings.Count(buf.String(), "store reads fail"); n != c.logs {
				t.Fatalf("%d warnings, want %d:\n%s", n, c.logs, buf.String())
			}
			got := l.core.Ready()
			if (c.err == nil) != (len(got.Events) == 1) || (c.err != nil) != (got.ReadRetries == 1) {
				t.Fatalf("the core did not take the result: %+v", got)
			}
		})
	}
}

// TestLogEvery: a kind of message is logged at most once per interval;
// other kinds are not held back by it.
func TestLogEvery(t *testing.T) {
	t.Parallel()
	l := testLoop(t, Config{}, nil)
	n := map[string]int{}
	for range 3 {
		l.logEvery("a", time.Hour, func() { n["a"]++ })
		l.logEvery("b", time.Hour, func() { n["b"]++ })
	}
	l.logEvery("c", 0, func() { n["c"]++ })
	l.logEvery("c", 0, func() { n["c"]++ })
	if n["a"] != 1 || n["b"] != 1 || n["c"] != 2 {
		t.Fatalf("logged %v, want a and b once, c (no interval) twice", n)
	}
}

// TestWarn: a partition's warning of a kind is logged once per warnEvery,
// with the table and partition; another kind is not held back by it.
func TestWarn(t *testing.T) {
	t.Parallel()
	logger, buf := testLogger()
	l := testLoop(t, Config{Logger: logger}, nil)
	for range 3 {
		l.warn("read", "reads fail", "key", "a")
	}
	l.warn("publish", "publishes fail")
	out := buf.String()
	if n, m := strings.Count(out, "resolver: reads fail"), strings.Count(out, "resolver: publishes fail"); n != 1 || m != 1 {
		t.Fatalf("%d read warnings and %d publish warnings, want one each (warnEvery):\n%s", n, m, out)
	}
	if !strings.Contains(out, "table=t partition=0 key=a") {
		t.Fatalf("the warning does not name its table, partition and key:\n%s", out)
	}
}

// boundsLog answers Bounds with an end and counts the calls.
type boundsLog struct {
	Log
	end    int64
	err    error
	bounds int
}

func (b *boundsLog) Bounds(context.Context, string, int32) (int64, int64, error) {
	b.bounds++
	return 0, b.end, b.err
}

// TestTickLag: a tick asks the log for the partition's end at most every
// lagEvery, and the lag gauge is that end (or the offset after what was
// read, when further) minus the committed offset.
func TestTickLag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		end  int64
		err  error
		read int // offsets ingested, all resolved at once
		want float64
	}{
		{name: "behind", end: 10, read: 1, want: 9},
		{name: "the end unknown", end: 10, err: errors.New("no"), read: 2, want: 0},
		{name: "read past the end asked for", end: 1, read: 3, want: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			lg := &boundsLog{end: c.end, err: c.err}
			l.r.log, l.pub = lg, stubPublisher{}
			for i := range c.read {
				l.core.Ingest(t0, []Entry{{Offset: int64(i), Invalid: true}})
			}
			l.tick(context.Background())
			if got := testutil.ToFloat64(l.m.lag); got != c.want || lg.bounds != 1 {
				t.Fatalf("lag %v after %d calls of Bounds, want %v after 1", got, lg.bounds, c.want)
			}
			if l.job != nil {
				<-l.jobDone
				l.job = nil
			}
			l.tick(context.Background())
			if lg.bounds != 1 && c.err == nil {
				t.Fatalf("Bounds called %d times within lagEvery", lg.bounds)
			}
		})
	}
}

// deadlineLog answers Bounds with the deadline of its context.
type deadlineLog struct {
	Log
	deadline time.Time
	had      bool
}

func (b *deadlineLog) Bounds(ctx context.Context, _ string, _ int32) (int64, int64, error) {
	b.deadline, b.had = ctx.Deadline()
	return 0, 0, nil
}

// TestTickBoundsBounded: the tick's Bounds, asked for the lag gauge on the
// loop's goroutine, ends within lagAsk: a Kafka partition without a
// leader made it retry until the loop's context ended (or, bounded by the
// log, for its request timeout every lagEvery), holding every publish,
// commit and health update of the partition meanwhile.
func TestTickBoundsBounded(t *testing.T) {
	t.Parallel()
	l := testLoop(t, Config{}, nil)
	lg := &deadlineLog{}
	l.r.log, l.pub = lg, stubPublisher{}
	l.tick(context.Background())
	if !lg.had || time.Until(lg.deadline) > lagAsk {
		t.Fatalf("Bounds of the tick asked with deadline %v (set: %v); want one within %s", lg.deadline, lg.had, lagAsk)
	}
	if l.job != nil {
		<-l.jobDone
	}
}

// commitPublisher is a stubPublisher that records its commits.
type commitPublisher struct {
	stubPublisher
	commits *[]int64
}

func (p commitPublisher) commit(_ context.Context, offset int64) error {
	*p.commits = append(*p.commits, offset)
	return nil
}

// TestDrain: with nothing in flight, drain commits what moved and returns
// at once; with a read in flight it waits for it (issuing no new reads).
func TestDrain(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		moved    bool
		inFlight bool
		want     []int64
	}{
		{name: "idle, nothing moved", want: nil},
		{name: "idle, the commit moved", moved: true, want: []int64{1}},
		{name: "a read in flight", moved: true, inFlight: true, want: []int64{1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logger, buf := testLogger()
			// A drain that waited for nothing would time out (and say so).
			l := testLoop(t, Config{Logger: logger, DrainTimeout: 3 * time.Second}, nil)
			var commits []int64
			l.pub, l.timer = commitPublisher{commits: &commits}, time.NewTimer(time.Hour)
			defer l.timer.Stop()
			if c.moved {
				l.core.Ingest(t0, []Entry{{Offset: 0, Invalid: true}})
			}
			if c.inFlight {
				l.core.Ingest(t0, []Entry{put(1, "a", ver(0, 0))})
				rd := l.core.Ready()
				l.reads = 1
				l.results <- []ReadResult{{Key: []byte("a"), Seq: rd.Reads[0].Seq, Err: errors.New("store down")}}
			}
			if err := l.drain(); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(commits) != fmt.Sprint(c.want) || l.reads != 0 || len(l.readQ) != 0 {
				t.Fatalf("commits %v, %d reads in flight, %d queued; want %v, none", commits, l.reads, len(l.readQ), c.want)
			}
			if strings.Contains(buf.String(), "drain timed out") {
				t.Fatal(buf.String())
			}
		})
	}
}

// failingMulti is a MultiGetter whose GetMany fails as a whole.
type failingMulti struct{ *countingStore }

func (failingMulti) GetMany(context.Context, string, [][]byte, store.Level) ([]store.KeyRead, error) {
	return nil, errors.New("store down")
}

// TestReadJob: a job of one read is one Get; of more, one GetMany on a
// MultiGetter (whose failure fails every read of the job), else one Get
// each; every result answers its request.
func TestReadJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, "t", []store.Mutation{{Key: []byte("a"), Value: []byte("x"), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		kind   string // "one": a store without GetMany, "multi", "failing"
		keys   []string
		gets   int
		manys  string
		failed bool
	}{
		{name: "one read of a MultiGetter", kind: "multi", keys: []string{"a"}, gets: 1, manys: "[]"},
		{name: "reads of a MultiGetter", kind: "multi", keys: []string{"a", "b", "a"}, manys: "[3]"},
		{name: "reads of a store without GetMany", kind: "one", keys: []string{"a", "b", "a"}, gets: 3, manys: "[]"},
		{name: "a GetMany that fails", kind: "failing", keys: []string{"a", "b"}, manys: "[]", failed: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := &countingStore{st: st}
			var s Store = cs
			switch c.kind {
			case "multi":
				s = countingMultiStore{cs}
			case "failing":
				s = failingMulti{cs}
			}
			r := New(nil, s, nil, Config{})
			var reqs []ReadRequest
			for i, k := range c.keys {
				reqs = append(reqs, ReadRequest{Key: []byte(k), Seq: uint64(i + 10), Level: 0, Probe: i == 1})
			}
			res := r.read(ctx, "t", reqs)
			if cs.gets != c.gets || fmt.Sprint(cs.manys) != c.manys || len(res) != len(reqs) {
				t.Fatalf("%d Gets, GetManys of %v keys, %d results; want %d, %s, %d", cs.gets, cs.manys, len(res), c.gets, c.manys, len(reqs))
			}
			for i, rs := range res {
				rq := reqs[i]
				if string(rs.Key) != string(rq.Key) || rs.Seq != rq.Seq || rs.Probe != rq.Probe || (rs.Err != nil) != c.failed {
					t.Fatalf("result %d %+v does not answer %+v (failed: %v)", i, rs, rq, c.failed)
				}
				if want := rq.Key[0] == 'a' && !c.failed; rs.Found != want || (want && rs.Row.Version != 7) {
					t.Fatalf("result %d: found %v version %d", i, rs.Found, rs.Row.Version)
				}
			}
		})
	}
}
