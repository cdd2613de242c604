package proxy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
)

// Merging concurrent writes (DESIGN.md, "Merged writes"). At most
// Limits.WritesInFlight batches of one table run the write path at once;
// a write that arrives while that many run waits in the table's queue, and
// when a batch ends, everything queued (up to Limits.MaxMerge mutations,
// Limits.MaxMergeBytes of rows and one append of intents: sizes.go) runs
// as one: one stamp pass, one intent append, one store write. So at
// low load a write runs at once, alone; under load the number of appends
// and store writes stays at the rate they complete, whatever the number of
// writers, and each carries more.
//
// A queued write is run by the first write of its merged batch (the
// leader), which hands the next batch on to a write of that batch when it
// is done: no goroutine is started, and no write answers later than the
// end of the batch it is in. A merged batch runs without its writers'
// cancellation (a writer that goes away does not cut the others' append);
// its time is bounded by the table's visibility window as any write's.

// MaxStampDelay bounds the time from a Write call to the stamping of its
// versions: a write still unstamped after it (it waited in a merge queue
// behind slow batches) fails with Unavailable, nothing written. A client
// that lost its connection with writes in flight therefore knows that
// none of them gets a version later than MaxStampDelay after it sent them,
// and can retry them without a lost attempt being stamped after (and so
// overwriting) a retry or a later write of the same key (client.Producer
// waits that long before it retries after a broken stream).
const MaxStampDelay = 5 * time.Second

// merger is the queue of one table.
type merger struct {
	mu      sync.Mutex
	running int
	queue   []*queued
}

// queued is one Write's mutations of a table waiting to be merged.
type queued struct {
	t    catalog.Table
	muts []Mutation
	idx  []int
	res  []Result
	at   time.Time // when its Write call began
	size size
	// appendLimit is the intent log's bound on one append of the
	// table's intents (0: none).
	appendLimit int
	// lead receives the batch this write must run (it is its first);
	// done is closed once another write ran it.
	lead chan []*queued
	done chan struct{}
}

func (p *Proxy) mergerOf(table string) *merger {
	p.mergeMu.Lock()
	defer p.mergeMu.Unlock()
	m, ok := p.mergers[table]
	if !ok {
		m = &merger{}
		p.mergers[table] = m
	}
	return m
}

// writeMerged runs the mutations idx of table t through the write path,
// alone if fewer than WritesInFlight batches of t run, else merged with
// the other writes that wait.
// arrived is when the Write call began: the stamp bound counts from there.
// sz is the size of the mutations, appendLimit the intent log's bound on
// one append of t (0: none).
func (p *Proxy) writeMerged(ctx context.Context, t catalog.Table, muts []Mutation, idx []int, res []Result, arrived time.Time, sz size, appendLimit int) {
	m := p.mergerOf(t.Name)
	m.mu.Lock()
	if m.running < p.limits.WritesInFlight && len(m.queue) == 0 {
		m.running++
		m.mu.Unlock()
		if !p.late(arrived, time.Now(), idx, res) && !p.overdue(muts, idx, res) {
			p.writeTable(ctx, t, muts, idx, res)
		}
		p.handOn(m)
		return
	}
	q := &queued{t: t, muts: muts, idx: idx, res: res, at: arrived, size: sz, appendLimit: appendLimit, lead: make(chan []*queued, 1), done: make(chan struct{})}
	m.queue = append(m.queue, q)
	m.mu.Unlock()
	p.metrics.mergeWaits.Inc()
	select {
	case <-q.done:
	case batch := <-q.lead:
		p.runMerged(ctx, batch)
		p.handOn(m)
	}
}

// handOn ends a batch of m: the next batch, if any writes wait, goes to
// its first write; else one fewer batch runs.
func (p *Proxy) handOn(m *merger) {
	m.mu.Lock()
	if len(m.queue) == 0 {
		m.running--
		m.mu.Unlock()
		return
	}
	n, sz, k := 0, size{}, 0
	for k < len(m.queue) && (k == 0 || p.fitsMerge(n, sz, m.queue[k])) {
		n += len(m.queue[k].idx)
		sz = sz.plus(m.queue[k].size)
		k++
	}
	batch := m.queue[:k:k]
	m.queue = append([]*queued(nil), m.queue[k:]...)
	m.mu.Unlock()
	batch[0].lead <- batch
}

// fitsMerge reports whether q may join a merged batch of n mutations of
// size sz: the batch stays within MaxMerge mutations, MaxMergeBytes of
// rows, and one append of the intent log (the bound q's Write learnt for
// the table, which every write of the queue shares).
func (p *Proxy) fitsMerge(n int, sz size, q *queued) bool {
	after := sz.plus(q.size)
	return n+len(q.idx) <= p.limits.MaxMerge && after.rows <= p.maxMergeBytes() &&
		(q.appendLimit == 0 || after.intents <= q.appendLimit)
}

// runMerged runs the writes of batch as one and answers each of them;
// batch[0] is the caller's own.
func (p *Proxy) runMerged(ctx context.Context, batch []*queued) {
	leader := batch[0]
	batch = p.refuseLate(leader, batch, time.Now())
	defer func() {
		for _, q := range batch {
			if q != leader {
				close(q.done)
			}
		}
	}()
	if len(batch) == 0 {
		return
	}
	if len(batch) == 1 {
		q := batch[0]
		p.writeTable(context.WithoutCancel(ctx), q.t, q.muts, q.idx, q.res)
		return
	}
	var n int
	for _, q := range batch {
		n += len(q.idx)
	}
	muts := make([]Mutation, 0, n)
	idx := make([]int, n)
	for _, q := range batch {
		for _, i := range q.idx {
			idx[len(muts)] = len(muts)
			muts = append(muts, q.muts[i])
		}
	}
	res := make([]Result, n)
	p.metrics.merged.Observe(float64(len(batch)))
	p.writeTable(context.WithoutCancel(ctx), batch[0].t, muts, idx, res)
	j := 0
	for _, q := range batch {
		for _, i := range q.idx {
			q.res[i] = res[j]
			j++
		}
	}
}

// refuseLate answers the writes of batch whose Write call began
// p.stampDelay or more before now, or that the last check before stamping
// refuses (gate: each against the table it was checked against, which a
// drop and create since may have replaced); nothing of them is written.
// It releases their writers (but the leader's, which runs the batch), and
// returns the others: all of one table, the one now.
func (p *Proxy) refuseLate(leader *queued, batch []*queued, now time.Time) []*queued {
	keep := batch[:0:0]
	for _, q := range batch {
		if !p.late(q.at, now, q.idx, q.res) && !p.overdue(q.muts, q.idx, q.res) && !p.gated(q.t, q.idx, q.res) {
			keep = append(keep, q)
			continue
		}
		if q != leader {
			close(q.done)
		}
	}
	return keep
}

// overdue answers the mutations idx of a write, and reports true, when
// one of them carries a StampBefore that the clock reached: the client
// sent them too long ago (the network or the server held them) and may
// have written their keys again since. Refused as a whole, as the client
// sent them.
func (p *Proxy) overdue(muts []Mutation, idx []int, res []Result) bool {
	var before uint64
	for _, i := range idx {
		if b := muts[i].StampBefore; b != 0 && (before == 0 || b < before) {
			before = b
		}
	}
	if before == 0 {
		return false
	}
	now := p.ServerTime()
	if now < before {
		return false
	}
	over := time.Duration(now - before)
	for _, i := range idx {
		res[i].Err = fmt.Errorf("%w: the write came to be stamped %s past the time its client set to stamp it by (stamp_before: the network or the server held it): nothing was written; retry",
			ErrUnavailable, over.Round(time.Millisecond))
	}
	p.metrics.lateWrites.Inc()
	return true
}

// late answers the mutations idx of a write whose Write call began at
// arrived, and reports true, when they could not be stamped within
// p.stampDelay of it: they waited for earlier writes of their table (the
// merge queue), for the other tables of their request (run one after
// another), or for their own checks.
func (p *Proxy) late(arrived, now time.Time, idx []int, res []Result) bool {
	waited := now.Sub(arrived)
	if waited < p.stampDelay {
		return false
	}
	for _, i := range idx {
		res[i].Err = fmt.Errorf("%w: the write waited %s to be stamped (for earlier writes of its table, or the other tables of its request), over %s: nothing was written; retry",
			ErrUnavailable, waited.Round(time.Millisecond), p.stampDelay)
	}
	p.metrics.lateWrites.Inc()
	return true
}
