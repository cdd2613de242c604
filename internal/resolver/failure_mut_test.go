package resolver

import (
	"errors"
	"testing"
	"time"
)

// TestCoreReadFailureCountsOnlyReadsSinceItsRound (issue 19): a failed
// read counts toward the bounds only if the store served another read at
// that level since the key's round began. A read that succeeded just
// before (the last seq when the key's state was made) proves nothing
// about an outage that starts now; a probe issued after the failure does
// (and confirms a counted failure: with MaxAttempts 1, the key's next
// counted failure dead-letters it).
func TestCoreReadFailureCountsOnlyReadsSinceItsRound(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	oneAttempt := failParams
	oneAttempt.MaxAttempts = 1
	run(t, oneAttempt, 0, nil, []step{
		{ingest: []Entry{put(0, "b", v1)}, reads: []string{"b@0"}},
		{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
		{published: true, commit: 1},
		{ingest: []Entry{put(1, "a", v1)}, reads: []string{"a@0"}},
		// b's read predates a's round: not counted, a probe asks
		{read: errRes("a"), reads: []string{"probe@0"}, probe: "b", retries: &[2]int{1, 0}, parked: n(1)},
		{read: probeRes(true)}, // the store serves: the next failure counts
		{at: 40, tick: true, reads: []string{"a@0"}},
		// counted, but a's only counted failure and unsure: no letter yet
		// (TestCoreOneAttemptOutageStart); the probe after it confirms it
		{at: 40, read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)},
		{at: 40, read: probeRes(true)},
		{at: 80, tick: true, reads: []string{"a@0"}},
		{at: 80, read: errRes("a"), letters: []string{letter("a", "read", v1)}, parked: n(1)},
		{at: 80, lettered: true, commit: 2, parked: n(0)},
	})
}

// TestCoreLetterCarriesTheError (issue 19): a dead letter records the
// failure that made it, and a failure without an error says so.
func TestCoreLetterCarriesTheError(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"the bus's error", errors.New("bus says no"), "bus says no"},
		{"no error given", nil, "unknown error"},
	} {
		c := NewCore(failParams, 0, nil)
		c.Ingest(t0, []Entry{put(0, "a", v1)})
		rq := c.Ready().Reads[0]
		c.ReadDone(t0, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: *row(v1, "x")})
		e := c.Ready().Events[0]
		c.PublishFailed(t0, []PublishFailure{{Event: e, Err: tc.err, Permanent: true, Alone: true}})
		ls := c.Ready().Letters
		if len(ls) != 1 || ls[0].Err != tc.want || !ls[0].Permanent || ls[0].Kind != LetterPublish || ls[0].Attempts != 1 ||
			!ls[0].FirstAttempt.Equal(t0) || !ls[0].LastAttempt.Equal(t0) {
			t.Fatalf("%s: letters %+v, want one permanent publish letter of 1 attempt at t0 with error %q", tc.name, ls, tc.want)
		}
	}
}

// TestCoreTakenBackOnce: an unsure failure taken back stays among the
// unsure ones while one before it is undecided (here, a's: only a's
// reads failed since); the strikes that follow do not take it back
// again (which would count the key's failures below zero and take
// back its retry time twice).
func TestCoreTakenBackOnce(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	b := &keyState{name: "b", fail: failStreak{counted: 1, retried: 30 * time.Millisecond, unsure: 2, added: 20 * time.Millisecond}}
	c.keys["b"] = b
	us := []unsureFail{{key: "a", mark: 1, id: 1}, {key: "b", mark: 2, id: 2, strikes: 1}}
	for seq := uint64(3); seq <= 5; seq++ { // a's reads fail: they strike b's failure only
		us = c.strike(us, "a", seq)
		if b.fail.counted != 0 || b.fail.retried != 10*time.Millisecond {
			t.Fatalf("after a's read %d: b's failures %d, retry time %s; want 0, 10ms (taken back once)", seq, b.fail.counted, b.fail.retried)
		}
		if len(us) != 2 {
			t.Fatalf("after a's read %d: unsure %+v, want a's and b's still", seq, us)
		}
	}
}

// letterOut drives key's intent v at offset off to a dead letter: read,
// event, a permanent publish failure. It returns the letter.
func letterOut(t *testing.T, c *Core, now time.Time, off int64, key string, v uint64) Letter {
	t.Helper()
	c.Ingest(now, []Entry{put(off, key, v)})
	rq := c.Ready().Reads[0]
	c.ReadDone(now, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: *row(v, "x")})
	e := c.Ready().Events[0]
	c.PublishFailed(now, []PublishFailure{{Event: e, Err: errors.New("too large"), Permanent: true, Alone: true}})
	ls := c.Ready().Letters
	if len(ls) != 1 {
		t.Fatalf("letters %+v, want one", ls)
	}
	return ls[0]
}

// TestCoreStaleLetterAckIgnored: an acknowledgement of a key's earlier
// letter (late or repeated) settles nothing of the letter now out for it:
// letters are told apart by ID, and the intents of the one out stay below
// the committed offset until it is durable.
func TestCoreStaleLetterAckIgnored(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	l1 := letterOut(t, c, t0, 0, "a", ver(0, 0))
	c.Lettered(t0, []Letter{l1})
	if got := c.Committed(); got != 1 {
		t.Fatalf("committed %d after the first letter, want 1", got)
	}
	l2 := letterOut(t, c, t0, 1, "a", ver(1, 0))
	c.Lettered(t0, []Letter{l1}) // stale
	if got := c.Committed(); got != 1 {
		t.Fatalf("committed %d after a stale acknowledgement, want 1 (letter %d is still out)", got, l2.ID)
	}
	c.Lettered(t0, []Letter{l2})
	if got := c.Committed(); got != 2 {
		t.Fatalf("committed %d after the second letter, want 2", got)
	}
}

// TestCoreLetteredEndsTheStreak: a key whose letter is durable starts
// afresh with the intents that arrived meanwhile: it is no longer parked,
// and their failures count from zero (the next letter says 1 attempt).
func TestCoreLetteredEndsTheStreak(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	v2 := ver(1, 0)
	l1 := letterOut(t, c, t0, 0, "a", ver(0, 0))
	c.Ingest(t0, []Entry{put(1, "a", v2)}) // waits behind the letter
	c.Lettered(t0, []Letter{l1})
	if got := c.Parked(); got != 0 {
		t.Fatalf("parked %d after the letter, want 0", got)
	}
	rq := c.Ready().Reads[0]
	c.ReadDone(t0, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: *row(v2, "x")})
	e := c.Ready().Events[0]
	c.PublishFailed(t0, []PublishFailure{{Event: e, Err: errors.New("too large"), Permanent: true, Alone: true}})
	if ls := c.Ready().Letters; len(ls) != 1 || ls[0].Attempts != 1 {
		t.Fatalf("letters %+v, want one of 1 attempt", ls)
	}
}

// TestCoreLetterRetryBacksOff: a letter that cannot be written is written
// again after a backoff that doubles per failure, as reads and publishes.
func TestCoreLetterRetryBacksOff(t *testing.T) {
	t.Parallel()
	p := failParams
	p.RetryMax = time.Second
	c := NewCore(p, 0, nil)
	l := letterOut(t, c, t0, 0, "a", ver(0, 0))         // 1 failed attempt
	c.LetterFailed(t0, []Letter{l}, errors.New("down")) // 2: retry within [10ms, 20ms]
	t1 := t0.Add(20 * time.Millisecond)
	c.Tick(t1)
	if ls := c.Ready().Letters; len(ls) != 1 {
		t.Fatalf("letters %+v at the first retry, want the letter again", ls)
	}
	c.LetterFailed(t1, []Letter{l}, errors.New("down")) // 3: within [20ms, 40ms]
	c.Tick(t1.Add(15 * time.Millisecond))
	if ls := c.Ready().Letters; len(ls) != 0 {
		t.Fatalf("letters %+v 15ms after the second failure, want none before 20ms", ls)
	}
	c.Tick(t1.Add(40 * time.Millisecond))
	if ls := c.Ready().Letters; len(ls) != 1 {
		t.Fatalf("letters %+v at the second retry, want the letter again", ls)
	}
}

// TestCoreIntentDuringLetterReadAgain: an intent that arrives while the
// key's letter is out, of a version at or below the failed event's, is
// not taken as covered by that event (the letter's intents are fixed):
// once the letter is durable the key reads it again and settles it.
func TestCoreIntentDuringLetterReadAgain(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	v1 := ver(0, 0)
	l1 := letterOut(t, c, t0, 0, "a", v1)
	c.Ingest(t0, []Entry{put(1, "a", v1)}) // the same write's intent again
	c.Lettered(t0, []Letter{l1})
	rs := c.Ready().Reads
	if len(rs) != 1 {
		t.Fatalf("reads %+v after the letter, want one of a", rs)
	}
	c.ReadDone(t0, ReadResult{Key: rs[0].Key, Seq: rs[0].Seq, Found: true, Row: *row(v1, "x")})
	c.Published(t0, c.Ready().Events)
	if got := c.Committed(); got != 2 {
		t.Fatalf("committed %d, want 2: the intent that came during the letter settled", got)
	}
}

// TestCoreCommitAfterLetter: a transaction carrying a key's dead letter
// commits the offset past the intents the letter settles (they resolve
// when it is acknowledged), and one without it stays below them: the
// letter is not durable yet.
func TestCoreCommitAfterLetter(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	letterOut(t, c, t0, 0, "a", ver(0, 0))
	c.Ingest(t0, []Entry{put(1, "b", ver(0, 0))}) // being read
	c.Ready()
	for _, tc := range []struct {
		keys []string
		want int64
	}{
		{nil, 0},
		{[]string{"b"}, 0}, // a's letter holds it
		{[]string{"a"}, 1}, // b is still being read
	} {
		var keys [][]byte
		for _, k := range tc.keys {
			keys = append(keys, []byte(k))
		}
		if got := c.CommitAfter(keys); got != tc.want {
			t.Errorf("CommitAfter(%v) = %d, want %d", tc.keys, got, tc.want)
		}
	}
}

// TestCoreAfterLetterReadsAtOnce: a key whose event was dead-lettered
// reads its intents left uncovered as soon as the letter is durable, not
// after the backoff its last read had set for them (the letter's
// failures took their own time).
func TestCoreAfterLetterReadsAtOnce(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	v1, v2 := ver(0, 0), ver(1, 0)
	c.Ingest(t0, []Entry{put(0, "a", v1), put(1, "a", v2)})
	rq := c.Ready().Reads[0]
	// v2 is not in the store yet: v1 goes out, v2 waits a backoff
	c.ReadDone(t0, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: *row(v1, "x")})
	e := c.Ready().Events[0]
	c.PublishFailed(t0, []PublishFailure{{Event: e, Err: errors.New("too large"), Permanent: true, Alone: true}})
	ls := c.Ready().Letters
	if len(ls) != 1 {
		t.Fatalf("letters %+v, want one", ls)
	}
	c.Lettered(t0, ls)
	if rs := c.Ready().Reads; len(rs) != 1 || string(rs[0].Key) != "a" {
		t.Fatalf("reads %+v once the letter is durable, want a's at once", rs)
	}
}
