package resolver

import (
	"math/rand/v2"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// Params configure the Core of one partition.
type Params struct {
	Table string
	// Partition is the intent log partition (it goes into dead letters).
	Partition int32
	// Window is the table's visibility window: how long after the core first
	// sees an intent it keeps re-reading for it before the intent counts as
	// unmaterialized. It starts at ingestion, not at the intent's creation:
	// an append that took long (a log outage) makes an old intent visible
	// only just before the proxy writes the store.
	Window time.Duration
	// Wide, until WideUntil, is a longer window an alter shortened
	// (catalog.Table.WideWindow): writes admitted under it may land until
	// then, so the intents ingested before WideUntil keep it, as after
	// SetWindow.
	Wide      time.Duration
	WideUntil time.Time
	// Levels is the number of read levels of the store (>= 1).
	Levels int
	// BackoffMin and BackoffMax bound the wait between rounds of reads of a
	// key whose state is older than its intents.
	BackoffMin, BackoffMax time.Duration
	// FirstReadDelay holds the first read of a key until this long after its
	// intent was created: the proxy writes the store only after the intent
	// is durable, so an immediate read mostly finds the old state. Intents
	// older than that (a resolver catching up) are read at once.
	FirstReadDelay time.Duration
	// LocalProxy, when LocalLanding is set, is the proxy id of the proxy in
	// this process, whose store writes the loop knows in flight
	// (Config.Landing): a read of its intents is held until their write
	// returned, so they need no FirstReadDelay and are read at once.
	LocalProxy   uint32
	LocalLanding bool
	// Horizon is how long, in version time, the core remembers the last
	// published version of an idle key (see "dedupe horizon" in DESIGN.md).
	Horizon time.Duration
	// MaxAttempts and MaxRetryTime bound the failed reads or publishes of a
	// key that count (see failure.go) before its intents go to the
	// dead-letter queue, whichever is reached first. 0: DefaultMaxAttempts,
	// DefaultMaxRetryTime.
	MaxAttempts  int
	MaxRetryTime time.Duration
	// RetryMin and RetryMax bound the backoff between failed attempts of a
	// key: RetryMin doubling per attempt up to RetryMax, each jittered down
	// by up to half. 0: DefaultRetryMin, DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Seed seeds the jitter: a core given the same inputs makes the same
	// decisions.
	Seed uint64
	// Recheck, when positive, reads a key once more, at the strongest
	// level, Recheck times its window after an intent of it expired
	// unmaterialized, and publishes the state found if it covers the
	// intent and is newer than the key's last event: a write whose commit
	// became visible after the window (recheck.go). The intent holds the
	// commit until then. 0: no second look.
	Recheck float64
}

// Defaults of the retry settings (see Params).
const (
	DefaultMaxAttempts  = 10
	DefaultMaxRetryTime = time.Minute
	DefaultRetryMin     = 10 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
)

// Entry is one record of the intent log as the core sees it.
type Entry struct {
	Offset int64
	Intent intent.Intent
	// Invalid marks a record that could not be decoded: it resolves at once.
	Invalid bool
}

// ReadRequest asks the I/O loop to read a key at a level.
type ReadRequest struct {
	Key   []byte
	Level store.Level
	Seq   uint64
	// Probe marks a read that only asks whether the store serves (see
	// the outage rule in failure.go); its result goes back as any other.
	Probe bool
	// Version is the newest version of the key's intents the read must
	// find (0: none, a read that only settles an ABORT); a read that
	// follows at once from the last one's answer, or retries it, asks for
	// what that one asked (landing.go). The I/O may hold the read until
	// the store write of that version has landed (see Landing): only a
	// later read, which the core allows for any read.
	Version uint64
}

// ReadResult is the answer to a ReadRequest.
type ReadResult struct {
	Key   []byte
	Seq   uint64
	Level store.Level
	Row   store.Row
	Found bool
	Err   error
	Probe bool
	// Took is how long the store took to answer (for metrics).
	Took time.Duration
	// Landed: Row is what a store write of this process stored, handed
	// over when it ended (landing.go), not a store read. Its snapshot is
	// the write's commit, which may be earlier than the read was asked
	// for, so it only ever publishes (ReadDone).
	Landed bool
}

// Unmaterialized reports intents whose version never became visible in the
// store within the visibility window: they produce no event.
type Unmaterialized struct {
	Key      []byte
	Versions []uint64
	// Seen is the version the store held at the last read (0: absent).
	Seen uint64
}

// Ready is what the core wants done. Events must be appended to the bus in
// order and acknowledged with Published or PublishFailed; Letters must be
// made durable in the dead-letter queue and acknowledged with Lettered or
// LetterFailed; Reads may run concurrently.
type Ready struct {
	Reads          []ReadRequest
	Events         []intent.Event
	Letters        []Letter
	Unmaterialized []Unmaterialized
	// Rechecked are intents reported unmaterialized whose version a
	// recheck found in the store after all, reported when their event is
	// durable on the bus: it came later than the window promises
	// (recheck.go).
	Rechecked []Unmaterialized
	// Commit is the new committed offset (the lowest unresolved offset), or
	// -1 when it did not move.
	Commit int64
	// Wake is when Tick must be called next (zero: no timer needed).
	Wake time.Time
	// ReadRetries and PublishRetries count the failed attempts since the
	// last Ready that will be tried again.
	ReadRetries, PublishRetries int
}

type phase uint8

const (
	idle       phase = iota // nothing in flight, no timer
	reading                 // a read is outstanding
	waiting                 // backing off until the timer, then reads
	publishing              // an event is outstanding on the bus
	retrying                // backing off after a failed publish or letter, then sends it again
	lettering               // a dead letter is outstanding
)

type keyState struct {
	key     []byte
	name    string // key as a string: its entry in keys, timers and lastPub
	pending []pending
	phase   phase
	traced  bool  // a pending intent carries a trace (stats.go)
	again   bool  // waiting to retry a failed read (reread)
	reads   int32 // of the round (stats.go)
	level   int
	attempt int
	seq     uint64
	asked   uint64 // the Version the last read asked for (reread)
	// readAt is when the outstanding (or last) read was asked for: the
	// read runs, and takes its snapshot of the store, no earlier. Only a
	// strongest-level read asked for at or after an intent's deadline can
	// prove it unmaterialized: an earlier one may predate a store write
	// that committed within the window, however late its answer comes.
	readAt   time.Time
	gen      uint64    // of its timer; a new one invalidates the others (see bump)
	retryAt  time.Time // after a partial publish: when to read again
	event    *intent.Event
	inFlight []pending // intents covered by event
	letter   *Letter
	lettered []pending // intents settled by letter
	// settleFrom is the first read seq that may settle an ABORT: a read
	// issued before the ABORT arrived may predate the aborted write.
	settleFrom uint64
	fail       failStreak
	// round are the reads since the last event, or those of the event
	// on its way (stats.go).
	round round
}

// slot tracks one ingested offset for the commit position.
type slot struct {
	offset  int64
	seen    time.Time // when the core ingested it
	created int64     // the intent's creation, Unix ns (0: not an intent)
	done    bool
}

type pubRec struct {
	key     string
	version uint64
}

// Core is the deterministic decision logic of the resolver for one
// partition of one table. It does no I/O and reads no clock: intents, read
// results, publish acknowledgements and the time come in; reads, events,
// dead letters and commits go out through Ready. It is not safe for
// concurrent use.
type Core struct {
	p Params

	keys    map[string]*keyState
	free    []*keyState       // resolved key states for reuse (at most maxFreeKeys)
	lastPub map[string]uint64 // acknowledged by the bus
	pubLog  []pubRec          // publish order, for evicting lastPub past the horizon

	slots     []*slot // from the lowest unresolved offset on; done ones may linger
	live      int     // slots not done
	next      int64   // offset after the last ingested entry
	committed int64
	watermark uint64 // highest intent version ingested
	// since: the core remembers every event published from then on (in
	// version time): the recovery's scan of the bus, then the horizon's
	// evictions (catchup.go).
	since time.Time
	// wide is a window an alter shortened, kept for the intents ingested
	// before wideUntil (SetWindow).
	wide      time.Duration
	wideUntil time.Time
	// held: no intent expires (HoldExpiry): the table's window may have
	// been lengthened elsewhere without this core knowing.
	held bool

	timers timerHeap
	gen    uint64 // the last timer generation handed out (bump)
	seq    uint64
	out    Ready
	// settled are the intents at or after the start that durable dead
	// letters settled before a restart, by offset: they resolve when
	// ingested.
	settled map[int64]Settled

	outages        // the outage rule (failure.go): what the backends served lately
	letters uint64 // ids of dead letters
	parked  int    // keys with a failed attempt they have not yet got past
	rng     *rand.Rand
}

// NewCore returns a core that resumes at offset start (the committed offset)
// with the last published version of recently published keys, as recovered
// from the event bus.
func NewCore(p Params, start int64, lastPublished map[string]uint64) *Core {
	if p.Levels < 1 {
		p.Levels = 1
	}
	if p.BackoffMin <= 0 {
		p.BackoffMin = time.Millisecond
	}
	if p.BackoffMax < p.BackoffMin {
		p.BackoffMax = p.BackoffMin
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxRetryTime <= 0 {
		p.MaxRetryTime = DefaultMaxRetryTime
	}
	if p.RetryMin <= 0 {
		p.RetryMin = DefaultRetryMin
	}
	if p.RetryMax < p.RetryMin {
		p.RetryMax = max(DefaultRetryMax, p.RetryMin)
	}
	c := &Core{
		p:         p,
		keys:      make(map[string]*keyState),
		lastPub:   make(map[string]uint64, len(lastPublished)),
		next:      start,
		committed: start,
		out:       Ready{Commit: -1},
		outages:   outages{readOK: make([]uint64, p.Levels)},
		rng:       rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)),
	}
	if p.Wide > p.Window {
		c.wide, c.wideUntil = p.Wide, p.WideUntil
	}
	for k, v := range lastPublished {
		c.lastPub[k] = v
		c.pubLog = append(c.pubLog, pubRec{k, v})
	}
	return c
}

// Settled is an intent a durable dead letter holds: its offset, key and
// version.
type Settled struct {
	Offset  int64
	Key     string
	Version uint64
}

// AlreadySettled tells the core, before it ingests them, which intents at
// or after its start durable dead letters settled (found in the dead-letter
// queue after a restart): they resolve at once, so that a letter written
// just before a crash is not written twice. Only the intent a letter holds:
// another at its offset (the log lost its tail, and new intents took the
// offsets again) is resolved as any other.
func (c *Core) AlreadySettled(ls []Settled) {
	for _, s := range ls {
		if s.Offset >= c.next {
			if c.settled == nil {
				c.settled = map[int64]Settled{}
			}
			c.settled[s.Offset] = s
		}
	}
}

// Committed returns the lowest offset not yet resolved.
func (c *Core) Committed() int64 { return c.committed }

// Next returns the offset after the last ingested entry.
func (c *Core) Next() int64 { return c.next }

// Unresolved returns how many ingested intents are not resolved yet.
func (c *Core) Unresolved() int { return c.live }

// ActiveKeys returns how many keys have unresolved intents.
func (c *Core) ActiveKeys() int { return len(c.keys) }

// OldestSeen returns when the core ingested its oldest unresolved intent
// (zero when every intent is resolved).
func (c *Core) OldestSeen() time.Time {
	for _, s := range c.slots {
		if !s.done {
			return s.seen
		}
	}
	return time.Time{}
}

// Ingest takes the next entries of the partition, in offset order.
func (c *Core) Ingest(now time.Time, entries []Entry) {
	for i := range entries {
		c.ingest(now, &entries[i])
	}
	c.evict()
	c.advance()
}

func (c *Core) ingest(now time.Time, e *Entry) {
	if e.Offset < c.next {
		return // already ingested (a re-delivery)
	}
	s := &slot{offset: e.Offset, seen: now}
	c.slots = append(c.slots, s)
	c.live++
	c.next = e.Offset + 1
	in := &e.Intent
	lettered, ok := c.settled[e.Offset]
	if ok {
		delete(c.settled, e.Offset)
		ok = lettered.Version == in.Version && lettered.Key == string(in.Key)
	}
	if e.Invalid || len(in.Key) == 0 || in.Version == 0 || ok {
		c.done(s)
		return
	}
	s.created = unixNano(in.CreatedAt)
	if w := c.versionTime(now, in.Version); w > c.watermark {
		c.watermark = w
	}
	if in.PublishedFloor != 0 && in.PublishedFloor > c.lastPub[string(in.Key)] {
		// Logged by reconcile or redrive: the bus has an event at or
		// above the floor, whatever we remember.
		key := string(in.Key)
		c.lastPub[key] = in.PublishedFloor
		c.pubLog = append(c.pubLog, pubRec{key, in.PublishedFloor})
	}
	p := pending{
		slot: s, version: in.Version, op: in.Op, created: in.CreatedAt,
		id: in.ID, proxy: in.ProxyID, floor: in.PublishedFloor, late: c.late(in),
	}
	if in.Trace != "" {
		tp := in.Trace
		p.trace = &tp
	}
	ks := c.keys[string(in.Key)]
	if ks != nil && ks.event != nil && in.Version <= ks.event.Version {
		// The event on its way covers it: it settles with that event (or
		// with its dead letter).
		ks.inFlight = append(ks.inFlight, p)
		return
	}
	if in.Op == intent.Abort {
		c.abort(now, in, p)
		return
	}
	if in.Version <= c.lastPub[string(in.Key)] {
		c.done(s) // an event at or above this version is already out
		return
	}
	if ks == nil {
		ks = c.newKeyState(in.Key)
	}
	// A key that only waits to recheck intents reads a new one as an idle
	// key does: its backoff and round start over, and one whose event (or letter)
	// is out reads it once that is, not at the recheck.
	_, rechecking := ks.rechecksOnly()
	p.needs, p.deadline = true, now.Add(c.window(now))
	ks.pending = append(ks.pending, p)
	ks.traced = ks.traced || p.trace != nil
	if rechecking {
		ks.attempt = 0
		if ks.event == nil {
			// The expired intents' reads are not its round's (stats.go).
			ks.round, ks.reads = round{}, 0
		}
	}
	at := c.firstRead(now, in)
	switch {
	case ks.phase == idle || ks.phase == waiting && rechecking:
		if now.Before(at) {
			c.wait(ks, at)
		} else {
			c.read(now, ks, 0)
		}
	case rechecking && !ks.retryAt.IsZero() && at.Before(ks.retryAt):
		ks.retryAt = at // the recheck's, until now
	}
}

// abort resolves an ABORT intent: the write of in.Version failed, so no
// intent waits for it; one read at the strongest level settles the key in
// case the write landed after all.
func (c *Core) abort(now time.Time, in *intent.Intent, p pending) {
	ks := c.keys[string(in.Key)]
	if ks == nil && in.Version <= c.lastPub[string(in.Key)] {
		c.done(p.slot)
		return
	}
	ks = c.keyState(in.Key)
	for i := range ks.pending {
		if ks.pending[i].version == in.Version {
			ks.pending[i].needs = false
		}
	}
	ks.pending = append(ks.pending, p)
	ks.settleFrom = c.seq + 1
	switch {
	case ks.phase == idle || ks.phase == waiting && (!ks.needsCoverage() || rechecking(ks)):
		c.read(now, ks, c.p.Levels-1)
	case rechecking(ks):
		// Its event (or letter) is out: read once it is, not at the
		// recheck (a read now out leaves it unsettled: expireOrRetry).
		ks.retryAt = time.Time{}
	}
}

// unsettled reports whether the key's last read predates an ABORT: then
// one more read at the strongest level must settle it.
func (ks *keyState) unsettled() bool { return ks.seq < ks.settleFrom }

func (ks *keyState) needsCoverage() bool {
	for i := range ks.pending {
		if ks.pending[i].needs {
			return true
		}
	}
	return false
}

// read asks for a read of the key at level, for the newest version its
// intents need covered (reread: one that follows from a read's answer).
func (c *Core) read(now time.Time, ks *keyState, level int) { c.ask(now, ks, level, ks.newest()) }

func (c *Core) ask(now time.Time, ks *keyState, level int, v uint64) {
	c.seq++
	ks.seq = c.seq
	ks.readAt = now
	ks.level = level
	ks.phase = reading
	ks.asked = v
	ks.readAsked(now, level)
	c.bump(ks)
	c.out.Reads = append(c.out.Reads, ReadRequest{Key: ks.key, Level: store.Level(level), Seq: ks.seq, Version: v})
}

// ReadDone takes the result of a read. Results that no longer match the
// key's outstanding read are ignored.
func (c *Core) ReadDone(now time.Time, r ReadResult) {
	if r.Probe {
		c.probed(r)
		return
	}
	ks := c.keys[string(r.Key)]
	if ks == nil || ks.phase != reading || ks.seq != r.Seq {
		return
	}
	ks.readAnswered(now, r.Err)
	if r.Landed && (r.Err != nil || !r.Found || !coversEvery(ks.pending, r.Row.Version) && r.Row.Version <= c.lastPub[ks.name]) {
		// A row handed over by a store write may predate the read: good
		// to publish (a durable version, not older than what the read had
		// to find), which covers the intents and ABORTs at or below it,
		// but not to settle or expire anything it does not cover. A row
		// that publishes nothing and leaves intents or ABORTs: the store
		// decides, at the same level.
		c.reread(now, ks, ks.level)
		return
	}
	top := ks.level == c.p.Levels-1
	if top && !r.Landed { // a row handed over says nothing of the store's reads
		c.topAnswered(r)
	}
	if r.Err != nil {
		c.readFailed(now, ks, r.Err, top)
		return
	}
	if !r.Landed {
		c.readOK[ks.level] = max(c.readOK[ks.level], r.Seq)
		if top {
			c.served = ks.key
		}
	}
	var v uint64
	if r.Found {
		v = r.Row.Version
	}
	if !top && !r.Landed && (!coversAll(ks.pending, v) || hasAbort(ks.pending)) {
		// Escalate before publishing or settling anything. An ABORT needs
		// the strongest level: its write may have landed on the primary
		// only (reported failed, committed anyway), and a replica that
		// shows an older version cannot tell. (A handed-over row is the
		// primary's own: no level shows more of it.)
		c.reread(now, ks, ks.level+1)
		return
	}
	c.recovered(ks)
	covered, rest := split(ks.pending, v)
	ks.pending = rest
	if r.Landed && hasAbort(rest) {
		// An ABORT it does not cover is settled only by a store read
		// asked from now on (finish): the row's snapshot may predate
		// the aborted write, which may have landed all the same.
		ks.settleFrom = c.seq + 1
	}
	if len(covered) > 0 && v > c.lastPub[string(r.Key)] {
		if allLate(covered) {
			c.letterLate(now, ks, covered)
			return
		}
		c.publish(now, ks, covered, r.Row)
		// A handed-over row that leaves intents (logged while the read
		// was held: a key written faster than its writes land, for which
		// a row covering them all may not come while the writes go on)
		// expires nothing, its snapshot may predate their writes: the
		// key reads again as soon as the event is out.
		if ks.needsCoverage() && !r.Landed {
			ks.retryAt = c.expireOrRetry(now, ks, v)
		}
		return
	}
	for _, p := range covered {
		c.done(p.slot) // covered by a version already published
	}
	c.settle(now, ks, v)
	c.advance()
}

// settle decides what a key does after a read that published nothing.
func (c *Core) settle(now time.Time, ks *keyState, seen uint64) {
	if at := c.expireOrRetry(now, ks, seen); !at.IsZero() {
		c.wait(ks, at)
		return
	}
	c.finish(now, ks)
}

// finish resolves a key with nothing left to cover, unless an ABORT still
// waits for a read issued after it.
func (c *Core) finish(now time.Time, ks *keyState) {
	if ks.unsettled() && len(ks.pending) > 0 {
		c.read(now, ks, c.p.Levels-1)
		return
	}
	c.resolveAll(ks)
}

// expireOrRetry drops the pending intents whose window had ended when the
// read that found them missing was asked for (at the strongest level) and
// returns when to read again for the rest (zero when nothing needs
// covering any more, or only rechecks and an ABORT still unsettled: what is
// left is for finish to settle).
func (c *Core) expireOrRetry(now time.Time, ks *keyState, seen uint64) time.Time {
	var expired []uint64
	kept := ks.pending[:0]
	for _, p := range ks.pending {
		if p.needs && !ks.readAt.Before(p.deadline) && !c.held {
			if !p.recheck {
				expired = append(expired, p.version)
			}
			if c.recheckLater(ks, &p) {
				kept = append(kept, p)
				continue
			}
			c.done(p.slot)
			continue
		}
		kept = append(kept, p)
	}
	ks.pending = kept
	if len(expired) > 0 {
		c.out.Unmaterialized = append(c.out.Unmaterialized, Unmaterialized{Key: ks.key, Versions: expired, Seen: seen})
	}
	if !ks.needsCoverage() {
		return time.Time{} // what is left (ABORTs) is for finish to settle
	}
	if at, ok := ks.rechecksOnly(); ok {
		if ks.unsettled() {
			// An ABORT came after the read was asked: finish reads for
			// it at once.
			return time.Time{}
		}
		return at // no reads until the recheck
	}
	d := c.p.BackoffMin << min(ks.attempt, 30)
	if d > c.p.BackoffMax || d <= 0 {
		d = c.p.BackoffMax
	}
	ks.attempt++
	return now.Add(d)
}

func (c *Core) publish(now time.Time, ks *keyState, covered []pending, row store.Row) {
	ev := &intent.Event{
		Table:      c.p.Table,
		Key:        ks.key,
		Op:         intent.Upsert,
		Version:    row.Version,
		Value:      row.Value,
		ResolvedAt: now,
		SchemaID:   row.SchemaID, // the schema the value was written with (drift guard: eventbus/typed.go)
	}
	if row.Deleted {
		ev.Op, ev.Value = intent.Delete, nil
	}
	for _, p := range covered {
		if p.op != intent.Abort {
			ev.CoveredIntents++
		}
		if p.created.After(ev.IntentAt) {
			ev.IntentAt = p.created
		}
	}
	ks.event = ev
	ks.inFlight = covered
	ks.endRound(covered)
	ks.phase = publishing
	ks.retryAt = time.Time{}
	c.send(ks)
}

// Published acknowledges that events returned by Ready are durable on the
// bus, which resolves the intents they cover.
func (c *Core) Published(now time.Time, events []intent.Event) {
	for i := range events {
		ks := c.keys[string(events[i].Key)]
		if ks == nil || ks.phase != publishing || ks.event == nil || ks.event.Version != events[i].Version {
			continue
		}
		c.took(ks)
		c.lastPub[ks.name] = ks.event.Version
		c.pubLog = append(c.pubLog, pubRec{ks.name, ks.event.Version})
		c.rechecked(ks, ks.inFlight, ks.event.Version)
		for _, p := range ks.inFlight {
			c.done(p.slot)
		}
		ks.inFlight, ks.event = nil, nil
		c.recovered(ks)
		c.proceed(now, ks)
	}
	c.advance()
}

// proceed decides what a key does once its event or dead letter is out.
func (c *Core) proceed(now time.Time, ks *keyState) {
	switch {
	case !ks.needsCoverage():
		c.finish(now, ks)
	case ks.retryAt.IsZero() || !now.Before(ks.retryAt):
		c.read(now, ks, 0)
	default:
		c.wait(ks, ks.retryAt)
	}
}

// resolveAll marks what is left of an idle key resolved and forgets it.
func (c *Core) resolveAll(ks *keyState) {
	for _, p := range ks.pending {
		c.done(p.slot)
	}
	c.recovered(ks)
	delete(c.keys, ks.name)
	if len(c.free) < maxFreeKeys {
		// Nothing else holds ks: timers and the I/O find keys by name.
		c.free = append(c.free, ks)
	}
}

// Ready returns what the core wants done since the last call, and clears it.
func (c *Core) Ready() Ready {
	r := c.out
	if len(c.timers) > 0 {
		r.Wake = c.timers[0].at
	}
	c.out = Ready{Commit: -1}
	return r
}

// done resolves a slot.
func (c *Core) done(s *slot) {
	if !s.done {
		s.done = true
		c.live--
	}
}

// advance moves the committed offset past resolved entries.
func (c *Core) advance() {
	i := 0
	for i < len(c.slots) && c.slots[i].done {
		i++
	}
	if i > 0 {
		c.slots = c.slots[i:]
		if len(c.slots) == 0 {
			c.slots = nil // let the backing array go
		}
		committed := c.next
		if len(c.slots) > 0 {
			committed = c.slots[0].offset
		}
		if committed != c.committed {
			c.committed = committed
			c.out.Commit = committed
		}
	}
	if len(c.slots) > 2*c.live+1024 {
		// A parked key holds the first slot: drop the resolved ones
		// behind it, so memory and backpressure follow the unresolved
		// intents, not the offsets since.
		kept := c.slots[:0]
		for _, s := range c.slots {
			if !s.done {
				kept = append(kept, s)
			}
		}
		clear(c.slots[len(kept):])
		c.slots = kept
	}
}

// versionTime is how far an intent of version v moves the core's version
// time (the watermark the horizon counts from): no further than now. One
// intent stamped far ahead (a proxy's clock a year ahead, a forged record)
// made the core forget every idle key's last event at once, so that a
// write of one logged late published that event's version again, and
// count every later intent of reconcile and redrive as late (dead-lettered
// again at each redrive: TestCoreFarFutureVersionForgetsNothing). Held
// back, the core forgets later, never earlier, and since stays the bound
// of what it forgot; a proxy's clock a little ahead only delays that.
func (c *Core) versionTime(now time.Time, v uint64) uint64 {
	if c.p.Horizon <= 0 {
		return v
	}
	return min(v, hlc.At(now.Add(time.Millisecond))-1) // the last version of now's millisecond
}

// evict forgets the last published version of idle keys published more than
// Horizon (in version time) before the newest ingested intent.
func (c *Core) evict() {
	if c.watermark == 0 || c.p.Horizon <= 0 {
		return
	}
	limit := hlc.Time(c.watermark).Add(-c.p.Horizon)
	if limit.After(c.since) {
		c.since = limit
	}
	n := 0
	var busy []pubRec
	for n < len(c.pubLog) && hlc.Time(c.pubLog[n].version).Before(limit) {
		r := c.pubLog[n]
		n++
		switch {
		case c.lastPub[r.key] != r.version:
			// published again since: a later record covers it
		case c.keys[r.key] != nil:
			busy = append(busy, r) // the key is active: look again later
		default:
			delete(c.lastPub, r.key)
		}
	}
	if n > 0 {
		c.pubLog = append(append(c.pubLog[:0:0], c.pubLog[n:]...), busy...)
	}
}

// LastPublished returns the last published version of a key the core still
// remembers (0 when it does not).
func (c *Core) LastPublished(key []byte) uint64 { return c.lastPub[string(key)] }
