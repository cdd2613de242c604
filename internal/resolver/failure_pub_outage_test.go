package resolver

import (
	"fmt"
	"testing"
	"time"
)

// pubCase builds a case of the outage rule for publishes (failParams:
// three counted failures dead-letter). Key a's event fails three times
// while the bus takes nothing (not counted; its retries wait 20 to 40 ms
// from then on), then the bus takes another event: a's next failure alone
// counts.
type pubCase struct {
	steps []step
	at    int   // ms
	off   int64 // the next offset
	keys  int   // other keys so far
}

var pv1 = ver(0, 0)

func newPubCase() *pubCase {
	b := &pubCase{off: 1}
	b.add(
		step{ingest: []Entry{put(0, "a", pv1)}, reads: []string{"a@0"}},
		step{read: res("a", row(pv1, "x")), events: []string{ev("a", pv1, 1)}},
		step{failed: []string{"a"}, parked: n(1)},
		step{at: 10, tick: true, events: []string{ev("a", pv1, 1)}},
		step{at: 10, failed: []string{"a"}},
		step{at: 30, tick: true, events: []string{ev("a", pv1, 1)}},
		step{at: 30, failed: []string{"a"}})
	b.at = 30
	b.publish(b.others(1)...)
	return b
}

func (b *pubCase) add(s ...step) { b.steps = append(b.steps, s...) }

// others reads n new keys, now: their events go out. It returns the keys.
func (b *pubCase) others(n int) []string {
	var keys []string
	for i := 0; i < n; i++ {
		b.keys++
		k := fmt.Sprintf("k%d", b.keys)
		keys = append(keys, k)
		b.add(step{at: b.at, ingest: []Entry{put(b.off, k, pv1)}, reads: []string{k + "@0"}},
			step{at: b.at, read: res(k, row(pv1, k)), events: []string{ev(k, pv1, 1)}})
		b.off++
	}
	return keys
}

// publish: the bus takes the events out (of keys, for the record).
func (b *pubCase) publish(keys ...string) { b.add(step{at: b.at, published: true}) }

// fail: the events of keys fail as how says.
func (b *pubCase) fail(how pubFail, keys ...string) {
	b.add(step{at: b.at, failed: keys, fail: how})
}

// retried: 10 ms later, the bus takes the retries of keys (they failed
// once).
func (b *pubCase) retried(keys ...string) {
	b.add(step{at: b.at + 10, tick: true, events: evsOf(keys...), anyOrder: true}, step{at: b.at + 10, published: true})
}

// evsOf returns the events of keys.
func evsOf(keys ...string) []string {
	var evs []string
	for _, k := range keys {
		evs = append(evs, ev(k, pv1, 1))
	}
	return evs
}

// aFails: 40 ms later, a's retry fails alone; letter: it dead-letters a.
func (b *pubCase) aFails(letter bool) {
	b.aRetry()
	b.aFail(letter, false)
}

// aRetry: 40 ms later, a's retry goes out.
func (b *pubCase) aRetry() {
	b.at += 40
	b.add(step{at: b.at, tick: true, events: []string{ev("a", pv1, 1)}})
}

// aFail: a's event fails alone (hold: the other events out are kept out);
// letter: it dead-letters a.
func (b *pubCase) aFail(letter, hold bool) {
	s := step{at: b.at, failed: []string{"a"}, hold: hold}
	if letter {
		s.letters = []string{letterOf("a")}
	}
	b.add(s)
}

func letterOf(k string) string { return letter(k, "publish", pv1) }

// lettered: a's letter is durable, which ends the case.
func (b *pubCase) lettered() []step {
	return append(b.steps, step{at: b.at, lettered: true, commit: b.off, parked: n(0)})
}

// through: 40 ms later the bus takes a's retry, which ends the case.
func (b *pubCase) through() []step {
	return append(b.steps,
		step{at: b.at + 40, tick: true, events: []string{ev("a", pv1, 1)}},
		step{at: b.at + 40, published: true, commit: b.off, parked: n(0)})
}

// busOutages: outages times, a's retry fails at the start of a short bus
// outage (the bus took other events since a's previous failure: a counted
// failure), then the events of others new keys, which go out after a's
// failure came back, fail as how says (the outage, or their own trouble),
// and the bus takes them on their retry. letterAt > 0: the letterAt-th of
// those failures of a dead-letters it; else a gets through at the end.
func busOutages(outages, letterAt int, how pubFail, others int) []step {
	b := newPubCase()
	for i := 1; i <= outages; i++ {
		b.aFails(i == letterAt)
		if i == letterAt {
			return b.lettered()
		}
		keys := b.others(others)
		b.fail(how, keys...)
		b.retried(keys...)
	}
	return b.through()
}

// confirmedThenStruck: a's counted failure, then the bus takes an event
// that went out after it came back (with early: after a's event went out,
// but before its failure came back), then two other events that went out
// after it fail. Then a fails twice more, counted: the bus took another
// event before each.
func confirmedThenStruck(early bool) []step {
	b := newPubCase()
	b.aRetry()
	var m []string
	if early {
		m = b.others(1)
	}
	b.aFail(false, early)
	if !early {
		m = b.others(1)
	}
	b.publish(m...)
	j := b.others(2)
	b.fail(pubFail{together: true}, j...)
	b.retried(j...)
	b.aFails(false)
	b.publish(b.others(1)...)
	if early { // 1 was taken back: a gets through
		b.aFails(false)
		return b.through()
	}
	b.aFails(true)
	return b.lettered()
}

// TestCorePublishOutageStartUncounted: a key's publish failure that came
// first in a bus outage counts when it comes (the bus took other events
// since the key's previous failure), but once two events or letters of
// other keys that went out after it came back fail too (not as the
// record's own for good), before any that went out after it gets
// through, it was the outage's: it is taken back. Before, a key whose
// retries met short bus outages counted the first failure of each and was
// dead-lettered though the bus took its event whenever it was up (found
// with TestCoreRandomized, faults-flaps, 300 seeds).
func TestCorePublishOutageStartUncounted(t *testing.T) {
	t.Parallel()
	timeBound := failParams
	timeBound.MaxAttempts, timeBound.MaxRetryTime = 100, 60*time.Millisecond
	tests := []struct {
		name  string
		p     Params
		steps []step
	}{
		{"two other events failing together after it take a failure back: outages never dead-letter", failParams,
			busOutages(5, 0, pubFail{together: true}, 2)},
		{"two other events failing alone after it (appends of their own in the outage) take it back too", failParams,
			busOutages(5, 0, pubFail{}, 2)},
		{"one other event failing after it takes nothing back: a is dead-lettered at MaxAttempts", failParams,
			busOutages(3, 3, pubFail{together: true}, 1)},
		{"other events failing as too large (the records' own) take nothing back", failParams,
			busOutages(3, 3, pubFail{together: true, permanent: true}, 2)},
		{"an event that went out after it getting through confirms it: other events failing after that take nothing back", failParams,
			confirmedThenStruck(false)},
		{"an event that went out before it came back does not confirm it", failParams,
			confirmedThenStruck(true)},
		{"events that went out before it came back failing after it are no strikes", failParams, func() []step {
			b := newPubCase()
			b.aRetry()
			j := b.others(2) // out after a's event, before its failure came back
			b.aFail(false, true)
			m := b.others(1) // out after it
			b.add(step{at: b.at, failed: j, fail: pubFail{together: true}, hold: true})
			b.publish(m...) // confirms it
			b.retried(j...)
			b.aFails(false)
			b.publish(b.others(1)...)
			b.aFails(true)
			return b.lettered()
		}()},
		{"letters written before it came back failing after it are no strikes", failParams, func() []step {
			b := newPubCase()
			b.aRetry()
			l := b.others(2)
			b.add(step{at: b.at, failed: l, fail: pubFail{permanent: true}, hold: true, letters: []string{letterOf(l[0]), letterOf(l[1])}})
			b.aFail(false, false)
			m := b.others(1) // out after it
			b.add(step{at: b.at, unwritten: true},
				step{at: b.at + 20, tick: true, letters: []string{letterOf(l[0]), letterOf(l[1])}, anyOrder: true})
			b.publish(m...) // confirms it
			b.add(step{at: b.at + 20, lettered: true})
			b.aFails(false)
			b.publish(b.others(1)...)
			b.aFails(true)
			return b.lettered()
		}()},
		{"a failure that does not count is never taken back (for another)", failParams, func() []step {
			b := newPubCase()
			b.aFails(false) // 1
			b.publish(b.others(1)...)
			b.aFails(false) // 2
			j := b.others(2)
			b.fail(pubFail{together: true}, j...)                                       // 2 taken back
			b.add(step{at: b.at + 10, tick: true, events: evsOf(j...), anyOrder: true}) // out, answered later
			b.aRetry()
			b.aFail(false, true) // nothing taken since 2: not counted
			j2 := b.others(2)
			b.add(step{at: b.at, failed: j2, fail: pubFail{together: true}, hold: true})
			b.publish(j...)
			b.retried(j2...)
			b.aFails(false) // 2
			b.publish(b.others(1)...)
			b.aFails(true) // 3
			return b.lettered()
		}()},
		{"only the key's last counted failure can be taken back", failParams, func() []step {
			b := newPubCase()
			b.aRetry()
			m := b.others(1)     // out after a's event, before its failure came back
			b.aFail(false, true) // 1
			b.publish(m...)      // no confirmation
			b.aFails(false)      // 2: counted (the bus took m)
			j := b.others(2)
			b.fail(pubFail{together: true}, j...) // 2 taken back, 1 stands
			b.retried(j...)
			b.aFails(false) // 2
			b.publish(b.others(1)...)
			b.aFails(true) // 3
			return b.lettered()
		}()},
		{"the key's own failures after it are no strikes", failParams, func() []step {
			b := newPubCase()
			b.aFails(false) // 1
			b.aFails(false) // nothing taken since: not counted
			b.aFails(false)
			b.publish(b.others(1)...)
			b.aFails(false) // 2
			b.publish(b.others(1)...)
			b.aFails(true) // 3
			return b.lettered()
		}()},
		{"a letter written after it confirms it", failParams, func() []step {
			b := newPubCase()
			b.aFails(false)
			l := b.others(1)
			b.add(step{at: b.at, failed: l, fail: pubFail{permanent: true}, letters: []string{letterOf(l[0])}},
				step{at: b.at, lettered: true})
			j := b.others(2)
			b.fail(pubFail{together: true}, j...)
			b.retried(j...)
			b.aFails(false)
			b.publish(b.others(1)...)
			b.aFails(true)
			return b.lettered()
		}()},
		{"two letters written after it failing take it back", failParams, func() []step {
			b := newPubCase()
			for i := 1; i <= 3; i++ {
				b.aFails(false)
				l := b.others(2)
				b.add(step{at: b.at, failed: l, fail: pubFail{permanent: true}, letters: []string{letterOf(l[0]), letterOf(l[1])}},
					step{at: b.at, unwritten: true},
					step{at: b.at + 20, tick: true, letters: []string{letterOf(l[0]), letterOf(l[1])}, anyOrder: true},
					step{at: b.at + 20, lettered: true})
			}
			return b.through()
		}()},
		{"a failure taken back takes back the retry time it added", timeBound, func() []step {
			b := newPubCase()
			b.aFails(false) // 1 at 70 ms
			b.publish(b.others(1)...)
			b.aFails(false) // 2 at 110 ms: 40 ms of retry time, taken back
			j := b.others(2)
			b.fail(pubFail{together: true}, j...)
			b.retried(j...)
			b.aFails(false) // 2 at 150 ms: after an outage, no retry time
			b.publish(b.others(1)...)
			b.aFails(false) // 3 at 190 ms: 40 ms of retry time
			return b.through()
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.p, 0, nil, tc.steps)
		})
	}
}

// TestCoreTakenBackForgotten: a failure taken back is decided: the core
// forgets it at once rather than keeping it until something else drops it.
func TestCoreTakenBackForgotten(t *testing.T) {
	t.Parallel()
	b := newPubCase()
	b.aFails(false)
	j := b.others(2)
	b.fail(pubFail{together: true}, j...)
	if c := run(t, failParams, 0, nil, b.steps); len(c.pubUnsure) != 0 {
		t.Fatalf("%d undecided publish failures after the take-back, want none", len(c.pubUnsure))
	}
}
