package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// commitsPublisher takes every job at once; its commits fail while fails
// is above zero (counting down), and it tells whether a job of letters
// committed the offset with them (as a transactional publisher does).
type commitsPublisher struct {
	stubPublisher
	fails     *int
	commits   *[]int64 // offsets committed
	committed bool     // letters carry the offset
}

func (p commitsPublisher) commit(ctx context.Context, offset int64) error {
	if err := ctx.Err(); err != nil {
		return err // as the logs do: embedded and Kafka refuse a commit whose context is done
	}
	if *p.fails > 0 {
		*p.fails--
		return errors.New("commit refused")
	}
	*p.commits = append(*p.commits, offset)
	return nil
}

func (p commitsPublisher) letters(context.Context, []*wailv1.DeadLetter, int64) (bool, error) {
	return p.committed, nil
}

// TestJobLeavesTheCommit: a job moves the loop's committed offset only
// when it committed one: a failed commit, or letters and events of a
// publisher that commits apart, leave the offset where it was, so that
// the next due commit starts (and lands).
func TestJobLeavesTheCommit(t *testing.T) {
	t.Parallel()
	ev := intent.Event{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 1, Value: []byte("v")}
	k := []byte("l")
	lt := Letter{ID: 1, Key: k, Kind: LetterRead, Intents: []intent.Intent{{Table: "t", Key: k, Op: intent.Upsert, Version: 1}}, Offsets: []int64{0}}
	cases := []struct {
		name      string
		overlap   bool
		job       string // "commit", "letters", "events"
		fails     int    // commits that fail
		committed bool   // the publisher commits with the letters
		after     int64  // the loop's committed offset after the job
		next      string // the commits of the next due commit ("[]": none started)
	}{
		{name: "a commit", job: "commit", after: 1, next: "[]"},
		{name: "a failed commit", job: "commit", fails: 1, after: 0, next: "[1]"},
		{name: "a failed commit apart (overlap)", overlap: true, job: "commit", fails: 1, after: 0, next: "[1]"},
		{name: "letters of a publisher that commits apart", job: "letters", after: 0, next: "[1]"},
		{name: "letters with their offset", job: "letters", committed: true, after: 1, next: "[]"},
		{name: "events of a publisher that commits apart", job: "events", after: 0, next: "[1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			fails := c.fails
			var commits []int64
			l.pub, l.overlap = commitsPublisher{fails: &fails, commits: &commits, committed: c.committed}, c.overlap
			// Offset 0 settles at once: the partition's committed offset is 1.
			l.core.Ingest(t0, []Entry{{Offset: 0, Invalid: true}})
			switch c.job {
			case "commit":
				l.commitDue = true
			case "letters":
				l.letterQ = []Letter{lt}
			case "events":
				l.pubQ = []intent.Event{ev}
			}
			l.startJob()
			if !l.publishing() {
				t.Fatal("no job started")
			}
			l.finished(<-l.jobDone)
			if l.commit != c.after || l.publishing() {
				t.Fatalf("after the %s job: committed %d, publishing %v; want %d, none", c.job, l.commit, l.publishing(), c.after)
			}
			commits = nil
			l.commitDue = true
			l.startJob()
			if l.publishing() {
				l.finished(<-l.jobDone)
			}
			if fmt.Sprint(commits) != c.next {
				t.Fatalf("the next due commit committed %v, want %s", commits, c.next)
			}
		})
	}
}

// TestCommitFinal: the drain's final commit commits the partition's
// committed offset once it moved, with time to do it (a log refuses a
// commit whose context is done); only a commit that landed moves the
// loop's offset, and a failure is logged.
func TestCommitFinal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		moved   bool
		fails   int
		commits string
		commit  int64 // the loop's committed offset after
		logged  bool
	}{
		{name: "nothing moved", commits: "[]", commit: 0},
		{name: "moved", moved: true, commits: "[1]", commit: 1},
		{name: "the commit fails", moved: true, fails: 1, commits: "[]", commit: 0, logged: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logger, buf := testLogger()
			l := testLoop(t, Config{Logger: logger}, nil)
			fails := c.fails
			var commits []int64
			l.pub = commitsPublisher{fails: &fails, commits: &commits}
			if c.moved {
				l.core.Ingest(t0, []Entry{{Offset: 0, Invalid: true}})
			}
			l.commitFinal()
			logged := strings.Contains(buf.String(), "could not commit its final offset")
			if fmt.Sprint(commits) != c.commits || l.commit != c.commit || logged != c.logged {
				t.Fatalf("commits %v, loop's offset %d, failure logged %v; want %s, %d, %v\n%s",
					commits, l.commit, logged, c.commits, c.commit, c.logged, buf.String())
			}
		})
	}
}

// TestOverlapNoEventsBesideLetters: with overlap, events queued while
// letters are on their way (none queued any more) wait for them: no job
// of events starts beside letters, however often the loop asks.
func TestOverlapNoEventsBesideLetters(t *testing.T) {
	t.Parallel()
	l := testLoop(t, Config{}, nil)
	pub := &gatePublisher{}
	l.pub, l.overlap = pub, true
	k := []byte("l")
	l.letterQ = []Letter{{ID: 1, Key: k, Kind: LetterPublish, Intents: []intent.Intent{{Table: "t", Key: k, Op: intent.Upsert, Version: 1}}, Offsets: []int64{0}}}
	l.startJob()
	l.pubQ = []intent.Event{{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 1, Value: []byte("v")}}
	for range 2 {
		l.startJob()
		if got := onTheirWay(l); got != "letters - -" {
			t.Fatalf("events queued behind letters: on their way %q, want %q (publisher calls %v)", got, "letters - -", pub.started)
		}
	}
	pub.open("letters")
	l.finished(<-l.jobDone)
	if got := onTheirWay(l); got != "a - -" {
		t.Fatalf("after the letters: on their way %q, want %q", got, "a - -")
	}
	pub.open("a")
	l.finished(<-l.jobDone)
}

// scriptedReader returns its batches in order, then err (ctx's error
// once ctx is done).
type scriptedReader struct {
	intentlog.Reader
	batches [][]intentlog.Record
	err     error
}

func (r *scriptedReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(r.batches) == 0 {
		return nil, r.err
	}
	b := r.batches[0]
	r.batches = r.batches[1:]
	return b, nil
}

// TestReadIntents: the reader's batches reach the loop in order, and its
// error after them; an error that comes of the loop's end (its context
// done) is not reported.
func TestReadIntents(t *testing.T) {
	t.Parallel()
	boom := errors.New("log down")
	rec := func(off int64) []intentlog.Record { return []intentlog.Record{{Offset: off}} }
	for _, c := range []struct {
		name    string
		stopped bool // the loop's context is done
		want    string
		err     error
	}{
		{name: "batches, then the error", want: "[0 1]", err: boom},
		{name: "the loop stopped", stopped: true, want: "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.stopped {
				cancel()
			}
			out, errc := make(chan []intentlog.Record, 2), make(chan error, 1)
			readIntents(ctx, &scriptedReader{batches: [][]intentlog.Record{rec(0), rec(1)}, err: boom}, out, errc)
			close(out)
			var got []int64
			for b := range out {
				for _, r := range b {
					got = append(got, r.Offset)
				}
			}
			var err error
			select {
			case err = <-errc:
			default:
			}
			if fmt.Sprint(got) != c.want || !errors.Is(err, c.err) {
				t.Fatalf("offsets %v, error %v; want %s, %v", got, err, c.want, c.err)
			}
		})
	}
}
