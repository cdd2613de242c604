package resolver

import (
	"errors"
	"sort"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// Failures, parking and dead letters: what the Core decides when a key's
// store read or bus append fails.
//
// A key whose read or publish failed is parked: it backs off (RetryMin
// doubling up to RetryMax, jittered) and tries again; its later intents
// queue behind it (one read or publish answers them all); every other key
// of the partition goes on, and the committed offset stays below the
// parked key's oldest intent. Its intents go to the table's dead-letter
// queue (a Letter) when
//   - the failure is permanent for that record (an event too large for the
//     bus, or one that cannot be encoded), once the event failed alone: at
//     once;
//   - MaxAttempts of its failed attempts counted, or its counted failures
//     span MaxRetryTime (checked at each counted failure), less the spans
//     between two counted failures that held an uncounted one: time the
//     store or the bus was out for the key is not retry time, so a key
//     whose level was down for longer than MaxRetryTime between two
//     transient failures is not dead-lettered for it. A counted failure
//     that is the key's only one and unsure (below) dead-letters nothing
//     (MaxAttempts 1): the key's next counted failure does.
//
// The outage rule decides what counts: a failed attempt counts only if the
// backend served other keys since the key's previous attempt.
//   - A read round (cheapest level up to the strongest) counts when, at a
//     level where it failed, a read issued after the key's previous failed
//     round succeeded. It is taken back (with the retry time it added)
//     when, before any read asked after it succeeds at the strongest
//     level, two reads of other keys (probes included) asked after it fail
//     there, not as unavailable: it was the first failure of an outage,
//     which the core cannot tell when it comes (unsureFail). Else a key
//     kept parked (its level unavailable) while short outages come and go
//     would add up the first failure of each to a dead letter.
//   - A publish counts when the event failed alone (the loop isolates it by
//     bisecting its batch) and the bus took other events or letters since
//     the key's previous failure. It is taken back (with the retry time it
//     added) when, before the bus takes any event or letter that went out
//     after it came back, two of other keys that went out after it fail
//     (not as too large or not encodable, the records' own): it was the
//     first failure of a bus outage (unsureFail). Else a key whose retries
//     met short bus outages one after another would add up the first
//     failure of each to a dead letter. A publish that may have landed
//     (the loop could not check) never counts.
//
// A read that failed because the store cannot serve that level now
// (store.ErrUnavailable: too few replicas alive for the consistency level,
// a timeout, no connection, overload) never counts, even while the level
// serves other keys: with a replica down, a read at ALL, or at QUORUM with
// two down, fails for exactly the keys that replica holds and succeeds for
// the rest of the ring. That is the store's outage, not the key's: the key
// stays parked (and says so) until the level serves it again.
//
// So while the store or the bus is down for every key, nothing counts and
// nothing is dead-lettered: the keys back off and retry until it is back.
// So that this holds in a partition where no other key is being read, a
// failed read round asks for a probe: a strongest-level read of a key that
// read fine lately (or of an absent key), one probe at a time. If it
// succeeds, the store serves, and the key's next failed round counts. Publishes have no such probe (an
// append has effects): a publish that fails for one key of an otherwise
// idle partition stays parked, and says so (Parked), until it gets through
// or other events flow.
// A dead letter settles its intents only once it is durable (Lettered);
// one that fails to be written is retried, never given up.

// LetterKind says why intents were dead-lettered.
type LetterKind uint8

// Letter kinds.
const (
	LetterRead    LetterKind = iota + 1 // the key's state could not be read
	LetterPublish                       // its event could not be published
)

func (k LetterKind) String() string {
	if k == LetterRead {
		return "read"
	}
	return "publish"
}

// Letter is a dead letter: intents of one key that the core settles
// without an event, and why.
type Letter struct {
	// ID identifies the letter within the core (for Lettered).
	ID   uint64
	Key  []byte
	Kind LetterKind
	// Intents are the intents it settles, in log order, at Offsets.
	Intents []intent.Intent
	Offsets []int64
	// Err is the last error; Permanent says retrying could never help.
	Err       string
	Permanent bool
	// Attempts counts the failed attempts, from FirstAttempt to LastAttempt.
	Attempts                  int
	FirstAttempt, LastAttempt time.Time
}

// PublishFailure is an event of Ready that did not reach the bus.
type PublishFailure struct {
	Event intent.Event
	Err   error
	// Permanent: the bus can never take this event (too large, cannot be
	// encoded).
	Permanent bool
	// Alone: it failed in an append of its own (see the outage rule).
	Alone bool
	// Uncertain: it may have reached the bus after all (the check failed).
	Uncertain bool
}

// failStreak is a key's run of failed attempts since it last got through.
type failStreak struct {
	tries       int // every failed attempt
	counted     int // those that count toward the bounds
	first, last time.Time
	// retried is the key's retry time so far: the time between counted
	// failures, less the spans with an uncounted one (the store's or the
	// bus's outage) between them; lastCounted is the last counted one,
	// outage says an uncounted failure came since.
	retried     time.Duration
	lastCounted time.Time
	outage      bool
	err         string
	permanent   bool
	readMark    uint64 // c.seq at the key's previous failed read round
	pubMark     uint64 // c.pubOK at the key's previous failed publish
	sent        uint64 // c.sent when its event or letter last went out
	served      bool   // this read round failed at a level that served others since readMark
	// unsure identifies the key's last counted failure while it is
	// undecided (0: none); added is the retry time it added. See
	// unsureFail.
	unsure uint64
	added  time.Duration
}

// outages is what the outage rule knows of what the backends served.
type outages struct {
	readOK  []uint64 // per level, the highest seq of a read that succeeded
	served  []byte   // a key whose strongest-level read succeeded lately (for probes)
	probing bool     // a probe read is outstanding
	pubOK   uint64   // events and letters acknowledged so far
	sent    uint64   // events and letters handed out so far
	// unsure are the counted read failures (marks: c.seq) and publish
	// failures (marks: c.sent) not yet decided, by mark; unsureN numbers
	// them.
	unsure, pubUnsure []unsureFail
	unsureN           uint64
}

// unsureFail is a counted failure that no attempt asked after it has
// succeeded for yet: a read at the strongest level, or a publish of an
// event or letter. Such an attempt succeeding confirms it (the backend
// served while the key failed); two attempts of other keys asked after it
// failing first (not unavailable; not the record's own for good) take it
// back: the backend was failing every key, and the key's failure was the
// first of an outage, which the core could not tell when it came. One
// failure of another key may be that key's own.
type unsureFail struct {
	key     string
	mark    uint64 // c.seq or c.sent when it failed: attempts numbered higher were asked after it
	id      uint64 // failStreak.unsure
	strikes int    // attempts of other keys asked after it that failed
}

// doubt records the key's counted failure, which took its retry time from
// retried to what it is now, as unsure in us, at mark.
func (c *Core) doubt(us *[]unsureFail, ks *keyState, mark uint64, retried time.Duration) {
	c.unsureN++
	ks.fail.unsure, ks.fail.added = c.unsureN, ks.fail.retried-retried
	*us = append(*us, unsureFail{key: ks.name, mark: mark, id: c.unsureN})
}

// confirm takes an attempt numbered seq that succeeded: it confirms the
// unsure failures before it.
func confirm(us []unsureFail, seq uint64) []unsureFail {
	n := 0
	for n < len(us) && us[n].mark < seq {
		n++
	}
	return dropUnsure(us, n)
}

// strike takes an attempt of key numbered seq that failed: it strikes the
// unsure failures of other keys before it, and takes back those struck
// twice.
func (c *Core) strike(us []unsureFail, key string, seq uint64) []unsureFail {
	for i := 0; i < len(us) && us[i].mark < seq; i++ {
		u := &us[i]
		if u.key == key {
			continue
		}
		if u.strikes++; u.strikes < 2 {
			continue
		}
		if ks := c.keys[u.key]; ks != nil && ks.fail.unsure == u.id {
			f := &ks.fail
			f.counted--
			f.retried -= f.added
			f.outage = f.counted > 0 // its span is outage, not retry time
			f.unsure = 0
		}
	}
	n := 0
	for n < len(us) && us[n].strikes >= 2 {
		n++
	}
	return dropUnsure(us, n)
}

// dropUnsure forgets the first n unsure failures of us.
func dropUnsure(us []unsureFail, n int) []unsureFail {
	if us = us[n:]; len(us) == 0 {
		return nil // let the backing array go
	}
	return us
}

// Parked returns how many keys are parked: they failed and have not got
// through (or been dead-lettered) since.
func (c *Core) Parked() int { return c.parked }

// readFailed handles a failed read: escalate, back off, or dead-letter.
func (c *Core) readFailed(now time.Time, ks *keyState, err error, top bool) {
	f := &ks.fail
	if c.readOK[ks.level] > f.readMark && !errors.Is(err, store.ErrUnavailable) {
		f.served = true
	}
	if !top {
		c.reread(now, ks, ks.level+1)
		return
	}
	// A round whose last read (at the strongest level) the store could not
	// serve is the store's outage, whatever failed below it.
	counted := f.served && !errors.Is(err, store.ErrUnavailable)
	f.served = false
	f.readMark = c.seq
	retried := f.retried
	// No read asked after the key's has succeeded: the store may have
	// stopped serving everyone just then.
	unsure := counted && c.readOK[ks.level] <= ks.seq
	if c.failed(now, ks, err.Error(), counted, unsure, false) {
		ps := ks.pending
		ks.pending = nil
		c.deadLetter(ks, LetterRead, ps)
		return
	}
	if unsure {
		c.doubt(&c.unsure, ks, c.seq, retried)
	}
	c.out.ReadRetries++
	c.wait(ks, c.retryAt(now, ks))
	ks.again = true // the same read again (reread)
	if !errors.Is(err, store.ErrUnavailable) {
		c.probe(ks) // an unavailable round never counts: nothing to learn
	}
}

// topAnswered takes the answer of a store read at the strongest level
// (not a row handed over by a store write): it decides the unsure
// failures of the reads asked before it (see unsureFail).
func (c *Core) topAnswered(r ReadResult) {
	switch {
	case r.Err == nil:
		c.unsure = confirm(c.unsure, r.Seq)
	case !errors.Is(r.Err, store.ErrUnavailable): // that says nothing of whether the store serves others
		c.unsure = c.strike(c.unsure, string(r.Key), r.Seq)
	}
}

// probeKey is read by a probe when no other key read fine lately (after a
// restart): an absent key the store answers "not found" for when it serves.
var probeKey = []byte("\x00wail.probe")

// probe asks whether the store serves other keys at the strongest level,
// unless a probe is out already.
func (c *Core) probe(ks *keyState) {
	if c.probing {
		return
	}
	key := c.served
	if key == nil || string(key) == string(ks.key) {
		key = probeKey
	}
	c.probing = true
	c.seq++
	c.out.Reads = append(c.out.Reads, ReadRequest{Key: key, Level: store.Level(c.p.Levels - 1), Seq: c.seq, Probe: true})
}

// probed takes the result of a probe.
func (c *Core) probed(r ReadResult) {
	c.probing = false
	if r.Err == nil {
		top := c.p.Levels - 1
		c.readOK[top] = max(c.readOK[top], r.Seq)
	}
	c.topAnswered(r)
}

// PublishFailed takes the events of Ready that did not reach the bus. Each
// key backs off and publishes its event again, or dead-letters the intents
// it covers.
func (c *Core) PublishFailed(now time.Time, fails []PublishFailure) {
	for i := range fails {
		f := &fails[i]
		ks := c.keys[string(f.Event.Key)]
		if ks == nil || ks.phase != publishing || ks.event == nil || ks.event.Version != f.Event.Version {
			continue
		}
		certain := f.Alone && !f.Uncertain
		counted := certain && c.pubOK > ks.fail.pubMark
		ks.fail.pubMark = c.pubOK
		if !f.Permanent {
			c.pubUnsure = c.strike(c.pubUnsure, ks.name, ks.fail.sent)
		}
		retried := ks.fail.retried
		// The bus may have stopped taking anything just then: a counted
		// failure is unsure.
		if c.failed(now, ks, errString(f.Err), counted, counted, certain && f.Permanent) {
			ps := ks.inFlight
			ks.inFlight, ks.event = nil, nil
			c.deadLetter(ks, LetterPublish, ps)
			continue
		}
		if counted {
			c.doubt(&c.pubUnsure, ks, c.sent, retried)
		}
		c.out.PublishRetries++
		ks.phase = retrying
		c.timer(ks, c.retryAt(now, ks))
	}
}

// Lettered acknowledges that letters returned by Ready are durable in the
// dead-letter queue, which settles the intents they hold.
func (c *Core) Lettered(now time.Time, letters []Letter) {
	for i := range letters {
		ks := c.lettering(&letters[i])
		if ks == nil {
			continue
		}
		c.took(ks)
		for _, p := range ks.lettered {
			c.done(p.slot)
		}
		ks.letter, ks.lettered = nil, nil
		c.recovered(ks)
		if len(ks.pending) == 0 {
			c.resolveAll(ks)
			continue
		}
		c.proceed(now, ks) // intents that arrived meanwhile start afresh
	}
	c.advance()
}

// LetterFailed takes letters of Ready that could not be written: they are
// written again after a backoff, for as long as it takes.
func (c *Core) LetterFailed(now time.Time, letters []Letter, err error) {
	for i := range letters {
		ks := c.lettering(&letters[i])
		if ks == nil {
			continue
		}
		c.pubUnsure = c.strike(c.pubUnsure, ks.name, ks.fail.sent)
		c.failed(now, ks, errString(err), false, false, false)
		ks.phase = retrying
		c.timer(ks, c.retryAt(now, ks))
	}
}

func (c *Core) lettering(l *Letter) *keyState {
	ks := c.keys[string(l.Key)]
	if ks == nil || ks.phase != lettering || ks.letter == nil || ks.letter.ID != l.ID {
		return nil
	}
	return ks
}

// failed records a failed attempt and reports whether the key's intents
// must go to the dead-letter queue now. A counted failure that is unsure
// (it may be the first of an outage: unsureFail) and the key's only
// counted one dead-letters nothing, whatever the bounds (MaxAttempts 1):
// else an outage dead-lettered every key whose attempt came first in it,
// before the failures after it could take it back. The key's next counted
// failure confirms it.
func (c *Core) failed(now time.Time, ks *keyState, err string, counted, unsure, permanent bool) bool {
	f := &ks.fail
	if f.tries == 0 {
		f.first = now
		c.parked++
	}
	f.tries++
	f.last, f.err = now, err
	if permanent {
		f.permanent = true
		return true
	}
	if !counted {
		f.outage = f.counted > 0
		return false
	}
	if f.counted > 0 && !f.outage {
		f.retried += now.Sub(f.lastCounted)
	}
	f.counted++
	f.lastCounted, f.outage = now, false
	if unsure && f.counted == 1 {
		return false
	}
	return f.counted >= c.p.MaxAttempts || f.retried >= c.p.MaxRetryTime
}

// recovered ends a key's failure streak: it got through.
func (c *Core) recovered(ks *keyState) {
	if ks.fail.tries > 0 {
		c.parked--
	}
	ks.fail = failStreak{readMark: c.seq, pubMark: c.pubOK}
}

// retryAt is when a key that failed tries again: RetryMin doubling per
// failed attempt up to RetryMax, less a random part of up to half of it
// (so that keys that failed together do not retry together).
func (c *Core) retryAt(now time.Time, ks *keyState) time.Time {
	d := c.p.RetryMin << min(max(ks.fail.tries-1, 0), 30)
	if d > c.p.RetryMax || d <= 0 {
		d = c.p.RetryMax
	}
	return now.Add(d - time.Duration(c.rng.Int64N(int64(d/2)+1)))
}

// deadLetter sends a key's intents ps to the dead-letter queue.
func (c *Core) deadLetter(ks *keyState, kind LetterKind, ps []pending) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].slot.offset < ps[j].slot.offset })
	c.letters++
	f := &ks.fail
	l := &Letter{ID: c.letters, Key: ks.key, Kind: kind, Err: f.err, Permanent: f.permanent,
		Attempts: f.tries, FirstAttempt: f.first, LastAttempt: f.last}
	for _, p := range ps {
		l.Intents = append(l.Intents, intent.Intent{Table: c.p.Table, Key: ks.key, Op: p.op, Version: p.version,
			ID: p.id, ProxyID: p.proxy, CreatedAt: p.created, PublishedFloor: p.floor})
		l.Offsets = append(l.Offsets, p.slot.offset)
	}
	ks.letter, ks.lettered = l, ps
	ks.phase = lettering
	ks.retryAt = time.Time{}
	c.bump(ks)
	c.send(ks)
}

// resend publishes a key's event, or writes its letter, again.
func (c *Core) resend(ks *keyState) {
	c.bump(ks)
	switch {
	case ks.letter != nil:
		ks.phase = lettering
	case ks.event != nil:
		ks.phase = publishing
	default:
		return
	}
	c.send(ks)
}

// send hands out the key's letter, or else its event, numbered for the
// outage rule.
func (c *Core) send(ks *keyState) {
	c.sent++
	ks.fail.sent = c.sent
	if ks.letter != nil {
		c.out.Letters = append(c.out.Letters, *ks.letter)
		return
	}
	c.out.Events = append(c.out.Events, *ks.event)
}

// took counts an event or letter of the key that the bus took: it
// confirms the unsure publish failures before it went out.
func (c *Core) took(ks *keyState) {
	c.pubOK++
	c.pubUnsure = confirm(c.pubUnsure, ks.fail.sent)
}

// CommitAfter returns the committed offset as it will be once the events
// and letters now on their way for keys are acknowledged: a transaction
// that carries them can commit that offset with them.
func (c *Core) CommitAfter(keys [][]byte) int64 {
	flying := map[*slot]bool{}
	for _, k := range keys {
		if ks := c.keys[string(k)]; ks != nil {
			for _, p := range ks.inFlight {
				flying[p.slot] = true
			}
			for _, p := range ks.lettered {
				flying[p.slot] = true
			}
		}
	}
	for _, s := range c.slots {
		if !s.done && !flying[s] {
			return s.offset
		}
	}
	return c.next
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
