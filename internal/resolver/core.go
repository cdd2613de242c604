package resolver

import (
	"container/heap"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// Params configure the Core of one partition.
type Params struct {
	Table string
	// Window is the table's visibility window: how long after the core first
	// sees an intent it keeps re-reading for it before the intent counts as
	// unmaterialized. It starts at ingestion, not at the intent's creation:
	// an append that took long (a log outage) makes an old intent visible
	// only just before the proxy writes the store.
	Window time.Duration
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
	// Horizon is how long, in version time, the core remembers the last
	// published version of an idle key (see "dedupe horizon" in DESIGN.md).
	Horizon time.Duration
	// SchemaID is stamped on every event.
	SchemaID uint32
}

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
}

// ReadResult is the answer to a ReadRequest.
type ReadResult struct {
	Key   []byte
	Seq   uint64
	Level store.Level
	Row   store.Row
	Found bool
	Err   error
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
// order and acknowledged with Published; Reads may run concurrently.
type Ready struct {
	Reads          []ReadRequest
	Events         []intent.Event
	Unmaterialized []Unmaterialized
	// Commit is the new committed offset (the lowest unresolved offset), or
	// -1 when it did not move.
	Commit int64
	// Wake is when Tick must be called next (zero: no timer needed).
	Wake time.Time
}

type phase uint8

const (
	idle       phase = iota // nothing in flight, no timer
	reading                 // a read is outstanding
	waiting                 // backing off until wakeAt
	publishing              // an event is outstanding on the bus
)

// pending is an intent of a key that is not resolved yet.
type pending struct {
	slot     *slot
	version  uint64
	op       intent.Op
	needs    bool // must be covered by an event (false for ABORT and aborted intents)
	created  time.Time
	deadline time.Time
}

type keyState struct {
	key      []byte
	pending  []pending
	phase    phase
	level    int
	attempt  int
	seq      uint64
	gen      uint64    // invalidates stale timers
	retryAt  time.Time // after a partial publish: when to read again
	inFlight []pending // intents covered by the event being published
	// settleFrom is the first read seq that may settle an ABORT: a read
	// issued before the ABORT arrived may predate the aborted write.
	settleFrom uint64
}

// slot tracks one ingested offset for the commit position.
type slot struct {
	offset int64
	done   bool
}

type pubRec struct {
	key     string
	version uint64
}

// Core is the deterministic decision logic of the resolver for one
// partition of one table. It does no I/O and reads no clock: intents, read
// results, publish acknowledgements and the time come in; reads, events and
// commits go out through Ready. It is not safe for concurrent use.
type Core struct {
	p Params

	keys    map[string]*keyState
	lastPub map[string]uint64
	pubLog  []pubRec // publish order, for evicting lastPub past the horizon

	slots     []*slot
	next      int64 // offset after the last ingested entry
	committed int64
	watermark uint64 // highest intent version ingested

	timers timerHeap
	seq    uint64
	out    Ready
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
	c := &Core{
		p:         p,
		keys:      make(map[string]*keyState),
		lastPub:   make(map[string]uint64, len(lastPublished)),
		next:      start,
		committed: start,
		out:       Ready{Commit: -1},
	}
	for k, v := range lastPublished {
		c.lastPub[k] = v
		c.pubLog = append(c.pubLog, pubRec{k, v})
	}
	return c
}

// Committed returns the lowest offset not yet resolved.
func (c *Core) Committed() int64 { return c.committed }

// Next returns the offset after the last ingested entry.
func (c *Core) Next() int64 { return c.next }

// Unresolved returns how many ingested intents are not resolved yet.
func (c *Core) Unresolved() int { return len(c.slots) }

// ActiveKeys returns how many keys have unresolved intents.
func (c *Core) ActiveKeys() int { return len(c.keys) }

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
	s := &slot{offset: e.Offset}
	c.slots = append(c.slots, s)
	c.next = e.Offset + 1
	in := &e.Intent
	if e.Invalid || len(in.Key) == 0 || in.Version == 0 {
		s.done = true
		return
	}
	if in.Version > c.watermark {
		c.watermark = in.Version
	}
	key := string(in.Key)
	if in.Op == intent.Abort {
		c.abort(now, key, in, s)
		return
	}
	if in.Version <= c.lastPub[key] {
		s.done = true // an event at or above this version is already out
		return
	}
	ks := c.keyState(key, in.Key)
	ks.pending = append(ks.pending, pending{
		slot: s, version: in.Version, op: in.Op, needs: true,
		created: in.CreatedAt, deadline: now.Add(c.p.Window),
	})
	if ks.phase == idle {
		// Never wait longer than the delay itself, even if the proxy's
		// clock runs ahead of ours.
		at := in.CreatedAt.Add(c.p.FirstReadDelay)
		if limit := now.Add(c.p.FirstReadDelay); at.After(limit) {
			at = limit
		}
		if now.Before(at) {
			c.wait(ks, at)
		} else {
			c.read(ks, 0)
		}
	}
}

// abort resolves an ABORT intent: the write of in.Version failed, so no
// intent waits for it; one read at the strongest level settles the key in
// case the write landed after all.
func (c *Core) abort(now time.Time, key string, in *intent.Intent, s *slot) {
	ks := c.keys[key]
	if ks == nil && in.Version <= c.lastPub[key] {
		s.done = true
		return
	}
	ks = c.keyState(key, in.Key)
	for i := range ks.pending {
		if ks.pending[i].version == in.Version {
			ks.pending[i].needs = false
		}
	}
	ks.pending = append(ks.pending, pending{slot: s, version: in.Version, op: in.Op, created: in.CreatedAt})
	ks.settleFrom = c.seq + 1
	if ks.phase == idle || (ks.phase == waiting && !ks.needsCoverage()) {
		c.read(ks, c.p.Levels-1)
	}
}

// unsettled reports whether the key's last read predates an ABORT: then
// one more read at the strongest level must settle it.
func (ks *keyState) unsettled() bool { return ks.seq < ks.settleFrom }

func (c *Core) keyState(key string, raw []byte) *keyState {
	ks := c.keys[key]
	if ks == nil {
		ks = &keyState{key: raw}
		c.keys[key] = ks
	}
	return ks
}

func (ks *keyState) needsCoverage() bool {
	for i := range ks.pending {
		if ks.pending[i].needs {
			return true
		}
	}
	return false
}

func (c *Core) read(ks *keyState, level int) {
	c.seq++
	ks.seq = c.seq
	ks.level = level
	ks.phase = reading
	ks.gen++
	c.out.Reads = append(c.out.Reads, ReadRequest{Key: ks.key, Level: store.Level(level), Seq: ks.seq})
}

// ReadDone takes the result of a read. Results that no longer match the
// key's outstanding read are ignored.
func (c *Core) ReadDone(now time.Time, r ReadResult) {
	ks := c.keys[string(r.Key)]
	if ks == nil || ks.phase != reading || ks.seq != r.Seq {
		return
	}
	top := ks.level == c.p.Levels-1
	if r.Err != nil {
		// An error says nothing about visibility: never expire on it.
		if !top {
			c.read(ks, ks.level+1)
			return
		}
		c.backoff(now, ks)
		return
	}
	var v uint64
	if r.Found {
		v = r.Row.Version
	}
	if !top && (!coversAll(ks.pending, v) || hasAbort(ks.pending)) {
		c.read(ks, ks.level+1) // escalate before publishing or settling anything
		return
	}
	covered, rest := split(ks.pending, v)
	ks.pending = rest
	if len(covered) > 0 && v > c.lastPub[string(r.Key)] {
		c.publish(now, ks, covered, r.Row)
		if ks.needsCoverage() {
			ks.retryAt = c.expireOrRetry(now, ks, v)
		}
		return
	}
	for _, p := range covered {
		p.slot.done = true // covered by a version already published
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
	c.finish(ks)
}

// finish resolves a key with nothing left to cover, unless an ABORT still
// waits for a read issued after it.
func (c *Core) finish(ks *keyState) {
	if ks.unsettled() && len(ks.pending) > 0 {
		c.read(ks, c.p.Levels-1)
		return
	}
	c.resolveAll(ks)
}

// expireOrRetry drops the pending intents whose window has ended (the read
// that found them missing was at the strongest level) and returns when to
// read again for the rest (zero when nothing needs covering any more).
func (c *Core) expireOrRetry(now time.Time, ks *keyState, seen uint64) time.Time {
	var expired []uint64
	kept := ks.pending[:0]
	for _, p := range ks.pending {
		if p.needs && !now.Before(p.deadline) {
			p.slot.done = true
			expired = append(expired, p.version)
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
	d := c.p.BackoffMin << min(ks.attempt, 30)
	if d > c.p.BackoffMax || d <= 0 {
		d = c.p.BackoffMax
	}
	ks.attempt++
	return now.Add(d)
}

func (c *Core) backoff(now time.Time, ks *keyState) {
	d := c.p.BackoffMin << min(ks.attempt, 30)
	if d > c.p.BackoffMax || d <= 0 {
		d = c.p.BackoffMax
	}
	ks.attempt++
	c.wait(ks, now.Add(d))
}

func (c *Core) wait(ks *keyState, at time.Time) {
	ks.phase = waiting
	ks.gen++
	heap.Push(&c.timers, timer{at: at, key: string(ks.key), gen: ks.gen})
}

func (c *Core) publish(now time.Time, ks *keyState, covered []pending, row store.Row) {
	ev := intent.Event{
		Table:      c.p.Table,
		Key:        ks.key,
		Op:         intent.Upsert,
		Version:    row.Version,
		Value:      row.Value,
		ResolvedAt: now,
		SchemaID:   c.p.SchemaID,
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
	key := string(ks.key)
	c.lastPub[key] = row.Version
	c.pubLog = append(c.pubLog, pubRec{key, row.Version})
	ks.inFlight = covered
	ks.phase = publishing
	ks.retryAt = time.Time{}
	c.out.Events = append(c.out.Events, ev)
}

// Published acknowledges that events returned by Ready are durable on the
// bus, which resolves the intents they cover.
func (c *Core) Published(now time.Time, events []intent.Event) {
	for i := range events {
		ks := c.keys[string(events[i].Key)]
		if ks == nil || ks.phase != publishing {
			continue
		}
		for _, p := range ks.inFlight {
			p.slot.done = true
		}
		ks.inFlight = nil
		switch {
		case !ks.needsCoverage():
			c.finish(ks)
		case ks.retryAt.IsZero() || !now.Before(ks.retryAt):
			c.read(ks, 0)
		default:
			c.wait(ks, ks.retryAt)
		}
	}
	c.advance()
}

// resolveAll marks what is left of an idle key resolved and forgets it.
func (c *Core) resolveAll(ks *keyState) {
	for _, p := range ks.pending {
		p.slot.done = true
	}
	delete(c.keys, string(ks.key))
	ks.phase = idle
	ks.gen++
}

// Tick fires the timers due at now.
func (c *Core) Tick(now time.Time) {
	for len(c.timers) > 0 && !now.Before(c.timers[0].at) {
		t := heap.Pop(&c.timers).(timer)
		ks := c.keys[t.key]
		if ks == nil || ks.phase != waiting || ks.gen != t.gen {
			continue
		}
		level := 0
		if !ks.needsCoverage() {
			level = c.p.Levels - 1
		}
		c.read(ks, level)
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

// advance moves the committed offset past resolved entries.
func (c *Core) advance() {
	i := 0
	for i < len(c.slots) && c.slots[i].done {
		i++
	}
	if i == 0 {
		return
	}
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

// evict forgets the last published version of idle keys published more than
// Horizon (in version time) before the newest ingested intent.
func (c *Core) evict() {
	if c.watermark == 0 || c.p.Horizon <= 0 {
		return
	}
	limit := hlc.Time(c.watermark).Add(-c.p.Horizon)
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

func coversAll(ps []pending, v uint64) bool {
	for _, p := range ps {
		if p.needs && p.version > v {
			return false
		}
	}
	return true
}

func hasAbort(ps []pending) bool {
	for _, p := range ps {
		if p.op == intent.Abort {
			return true
		}
	}
	return false
}

// split returns the intents covered by version v and the rest.
func split(ps []pending, v uint64) (covered, rest []pending) {
	for _, p := range ps {
		if p.version <= v {
			covered = append(covered, p)
		} else {
			rest = append(rest, p)
		}
	}
	return covered, rest
}

type timer struct {
	at  time.Time
	key string
	gen uint64
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
