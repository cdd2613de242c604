package resolver

import (
	"fmt"
	"testing"
	"time"
)

// TestCoreRetryTimeSkipsOutages: the time a key's reads failed for the
// store's outage (uncounted failures between two counted ones) is not
// retry time: a transient counted failure, a long outage of the key's
// level and one more counted failure dead-letter nothing; counted
// failures that follow each other without an outage between them
// dead-letter once they span MaxRetryTime (found by TestCoreRandomized,
// faults, seeds 152 and 157).
func TestCoreRetryTimeSkipsOutages(t *testing.T) {
	t.Parallel()
	p := failParams
	p.MaxAttempts, p.MaxRetryTime = 100, 60*time.Millisecond
	c := NewCore(p, 0, nil)
	v1 := ver(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	off := int64(0)
	// readOf returns the outstanding read of key among reqs.
	readOf := func(reqs []ReadRequest, key string) ReadRequest {
		t.Helper()
		for _, rq := range reqs {
			if string(rq.Key) == key && !rq.Probe {
				return rq
			}
		}
		t.Fatalf("no read of %s in %+v", key, reqs)
		return ReadRequest{}
	}
	// served: another key reads fine (the store serves), so a's next
	// plain failure counts.
	served := func(now time.Time) {
		k := fmt.Sprintf("k%d", off)
		c.Ingest(now, []Entry{put(off, k, v1)})
		off++
		rq := readOf(c.Ready().Reads, k)
		c.ReadDone(now, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: *row(v1, "k")})
		c.Published(now, c.Ready().Events)
	}
	// fail answers a's read (asked by a tick at now) with err; it
	// returns the letters that came of it.
	fail := func(now time.Time, res func(key string) *ReadResult) []Letter {
		c.Tick(now)
		rq := readOf(c.Ready().Reads, "a")
		r := res("a")
		r.Seq = rq.Seq
		c.ReadDone(now, *r)
		rd := c.Ready()
		for _, x := range rd.Reads {
			if x.Probe { // the store does not answer probes: no help
				c.ReadDone(now, ReadResult{Key: x.Key, Seq: x.Seq, Probe: true, Err: fmt.Errorf("down")})
			}
		}
		return rd.Letters
	}
	c.Ingest(at(0), []Entry{put(off, "a", v1)})
	off++
	first := readOf(c.Ready().Reads, "a")
	served(at(0))
	c.ReadDone(at(0), ReadResult{Key: []byte("a"), Seq: first.Seq, Err: fmt.Errorf("boom")}) // counted 1, at 0 ms
	c.Ready()
	for _, ms := range []int{50, 100, 150} { // the level cannot serve a: 150 ms of outage
		if ls := fail(at(ms), unavailableRes); len(ls) != 0 {
			t.Fatalf("%d ms: an outage dead-lettered %+v", ms, ls)
		}
	}
	served(at(190))
	if ls := fail(at(200), errRes); len(ls) != 0 { // counted 2: 200 ms after the first, 150 of them outage
		t.Fatalf("a counted failure after an outage dead-lettered a: %s (the outage counted as retry time)", ls[0].Err)
	}
	served(at(240))
	if ls := fail(at(250), errRes); len(ls) != 0 { // counted 3: 50 ms of retry time
		t.Fatalf("50 ms of retry time dead-lettered a: %s", ls[0].Err)
	}
	served(at(300))
	if ls := fail(at(310), errRes); len(ls) != 1 { // counted 4: 110 ms of retry time
		t.Fatalf("110 ms of retry time (MaxRetryTime 60 ms): %d letters, want 1", len(ls))
	}
}
