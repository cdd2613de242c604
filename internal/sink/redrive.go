package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Redrive of a sink's dead letters: each letter's event is POSTed again to
// the sink's endpoint by the sink's runner, holding its partition's lock
// (no batch of the partition is delivered meanwhile), so per key the
// endpoint never receives an older version after a newer one:
//
//   - Under the lock, the runner reads the letter's bus partition from the
//     letter's offset to its end. If a newer event of the key is there
//     (delivered, still to be delivered, or in a newer letter), the letter
//     is settled SUPERSEDED and not sent: events carry a key's whole state,
//     so the newer one already says (or will say) everything the older one
//     did, and sending the older one after it would go back in time.
//   - Otherwise the event is POSTed once (one attempt: the operator is
//     there to see the answer); a 2xx settles it REDRIVEN. Any other
//     answer leaves it unsettled and ends the redrive with the endpoint's
//     error. Events appended after the read are delivered after the lock
//     is released: after the redriven one.
//
// A settled letter is not sent again (its first resolution is returned),
// so a second redrive is a no-op; two redrives at once are one after the
// other on the lock, and the second checks under it what the first
// settled. Only the process that delivers a partition redrives its letters
// (so two processes never send one letter at once); redrive --all does the
// partitions it delivers and names the others (ErrNotRunning). A crash
// between the 2xx and the resolution leaves the letter unsettled: the next
// redrive sends it again (at least once, as for every delivery) unless a
// newer event of the key has come since, which supersedes it. A letter
// whose bus offset retention removed cannot be proven in order and is
// refused (ErrCannotRedrive), as is a row of the sink's snapshot (no bus
// offset), or a letter whose event is not at its bus offset (the older
// format's snapshot rows, deadletter.go): drop them.

var (
	// ErrNotRunning: the sink is not running in this process, or does not
	// hold the letter's partition now; the message says where to redrive.
	ErrNotRunning = errors.New("the sink is not delivering here")
	// ErrCannotRedrive: a letter cannot be delivered in per-key order.
	ErrCannotRedrive = errors.New("dead letter cannot be redriven")
	// ErrEndpoint: the endpoint did not take a redriven event.
	ErrEndpoint = errors.New("the endpoint did not take the redriven event")
)

// lockPartition takes partition p's delivery lock (a batch being
// delivered, or a redrive); ctx ending gives up.
func (r *runner) lockPartition(ctx context.Context, p int32) (unlock func(), err error) {
	r.pmu.Lock()
	if r.plocks == nil {
		r.plocks = map[int32]chan struct{}{}
	}
	l := r.plocks[p]
	if l == nil {
		l = make(chan struct{}, 1)
		r.plocks[p] = l
	}
	r.pmu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// granted records the session's grants and revocations, so that a redrive
// knows which partitions this runner delivers now (and at which epoch).
func (r *runner) granted(sess *group.Session, msg group.Message) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if r.sess != sess || r.epochs == nil {
		r.sess, r.epochs = sess, map[int32]uint64{}
	}
	for _, g := range msg.Granted {
		r.epochs[g.Partition] = g.Epoch
	}
	for _, p := range msg.Revoked {
		delete(r.epochs, p)
	}
}

// owns says whether this runner's session delivers p now.
func (r *runner) owns(p int32) bool {
	_, ok := r.epoch(p)
	return ok
}

// epoch is the epoch at which this runner's session delivers p now (ok:
// it does).
func (r *runner) epoch(p int32) (epoch uint64, ok bool) {
	r.pmu.Lock()
	sess := r.sess
	if r.epochs != nil {
		epoch, ok = r.epochs[p]
	}
	r.pmu.Unlock()
	return epoch, ok && sess.Owns(p, epoch)
}

// redrive delivers the letters of one batch (offset order), partition by
// partition, settling each in q, and returns the resolutions appended (and
// those of letters another redrive settled meanwhile), the letters another
// request acted on first, and the partitions of letters left alone
// because this process does not deliver them now.
func (r *runner) redrive(ctx context.Context, q *dlq.Queue, batch []*wailv1.DeadLetterEntry) (out []*wailv1.DeadLetterResolution, lost []dlq.Raced, elsewhere []int32, err error) {
	byPart := map[int32][]*wailv1.DeadLetterEntry{}
	var parts []int32
	for _, e := range batch {
		l := e.GetLetter()
		switch {
		case l.GetKind() != wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK || l.GetSink() != r.def.Name:
			return nil, nil, nil, fmt.Errorf("%w: offset %d of %s is not a letter of sink %s", ErrCannotRedrive, e.Offset, q.Topic(), r.def.Name)
		case l.EventOffset < 0:
			return nil, nil, nil, fmt.Errorf("%w: offset %d is a row of the sink's snapshot (read from the store, no bus offset to order it by): "+
				"drop it (`wail sink dlq drop %s %s %d`); the endpoint gets the key's next change", ErrCannotRedrive, e.Offset, r.def.Table, r.def.Name, e.Offset)
		case l.Partition >= r.table.Partitions:
			return nil, nil, nil, fmt.Errorf("%w: offset %d: partition %d, the table has %d", ErrCannotRedrive, e.Offset, l.Partition, r.table.Partitions)
		}
		if byPart[l.Partition] == nil {
			parts = append(parts, l.Partition)
		}
		byPart[l.Partition] = append(byPart[l.Partition], e)
	}
	slices.Sort(parts)
	for _, p := range parts {
		res, raced, err := r.redrivePartition(ctx, q, p, byPart[p])
		out, lost = append(out, res...), append(lost, raced...)
		switch {
		case errors.Is(err, errNotOwned):
			elsewhere = append(elsewhere, p)
		case err != nil:
			return out, lost, elsewhere, err
		}
	}
	return out, lost, elsewhere, nil
}

// errNotOwned: this runner does not deliver the partition now.
var errNotOwned = errors.New("partition not delivered here")

// beforeResend runs before a letter is sent (tests: an event published
// between the read of the bus and the send); beforeLock before a redrive
// waits for a partition's lock (tests: two redrives at once).
var beforeResend, beforeLock = func() {}, func() {}

// newest is the last event of a key on the bus from the letters' lowest
// offset on.
type newest struct {
	offset  int64
	version uint64
}

// busPos is the key and version of the event at a letter's bus offset.
type busPos struct {
	key     string
	version uint64
}

// holder names this process in its claims (another request's error).
var holder = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("host %s pid %d", host, os.Getpid())
}()

// claimID returns a new claim's id.
func claimID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// releaseTimeout bounds the release of a redrive's claims when it ends
// early (its request's context may be over).
const releaseTimeout = 10 * time.Second

// takeOverForeign claims again, at their epochs, the letters of claimed
// held by claims at epochs this process never gave in its unshared group:
// a process that served the group before it, whose clock was ahead of
// this one's, left them (unshared epochs start above the clock at the
// process's start), and it is gone. Claimed at c's lower epoch they stayed
// held until this process's clock caught up (TestSinkRedriveTakesOverAClaimOfBeforeARestart/clock_ahead).
// The letters taken over join claimed.Won, under c's id.
func (r *runner) takeOverForeign(ctx context.Context, q *dlq.Queue, c dlq.Claim, claimed *dlq.Claimed) error {
	var offs []int64
	top := c.Epoch
	for off, h := range claimed.Held {
		if h.Epoch > c.Epoch && r.m.groups.NeverGave(r.table.Name, GroupName(r.def.Name), h.Epoch) {
			offs = append(offs, off)
			top = max(top, h.Epoch)
		}
	}
	if len(offs) == 0 {
		return nil
	}
	slices.Sort(offs)
	c.Epoch = top
	again, err := q.Claim(ctx, c, offs, time.Now())
	if err != nil {
		return err
	}
	for _, off := range offs {
		delete(claimed.Held, off)
	}
	maps.Copy(claimed.Settled, again.Settled)
	maps.Copy(claimed.Held, again.Held)
	claimed.Won = append(claimed.Won, again.Won...)
	slices.Sort(claimed.Won)
	return nil
}

// redrivePartition redrives the letters of partition p, which it claims
// first (package dlq, claim.go): it returns the resolutions (appended, or
// of letters another redrive settled as this one would have), the letters
// another request acted on first (dropped, or claimed by a newer owner of
// the partition), and errNotOwned when this runner does not deliver p.
func (r *runner) redrivePartition(ctx context.Context, q *dlq.Queue, p int32, letters []*wailv1.DeadLetterEntry) (out []*wailv1.DeadLetterResolution, lost []dlq.Raced, err error) {
	beforeLock()
	unlock, err := r.lockPartition(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("wait for partition %d's delivery in progress: %w", p, err)
	}
	defer unlock()
	epoch, ok := r.epoch(p)
	if !ok {
		return nil, nil, errNotOwned
	}
	offsets := make([]int64, len(letters))
	for i, e := range letters {
		offsets[i] = e.Offset
	}
	c := dlq.Claim{ID: claimID(), Epoch: epoch, Holder: fmt.Sprintf("%s (sink %s, partition %d epoch %d)", holder, r.def.Name, p, epoch)}
	claimed, err := q.Claim(ctx, c, offsets, time.Now())
	if err != nil {
		return nil, nil, err
	}
	if err := r.takeOverForeign(ctx, q, c, &claimed); err != nil {
		return nil, nil, err
	}
	// The letters the claim holds and has not settled yet are released
	// when the redrive ends early: unsettled again.
	held := map[int64]bool{}
	for _, off := range claimed.Won {
		held[off] = true
	}
	defer func() {
		if len(held) == 0 {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := q.Release(rctx, c, slices.Sorted(maps.Keys(held)), time.Now()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release the claim on dead letters %v (the next redrive of partition %d takes it over): %w",
				slices.Sorted(maps.Keys(held)), p, rerr))
		}
	}()
	start, end, err := r.m.log.Bounds(ctx, r.table.Topic, p)
	if err != nil {
		return nil, nil, fmt.Errorf("bounds of %s/%d: %w", r.table.Topic, p, err)
	}
	from := end
	keys, at := map[string]bool{}, map[int64]busPos{}
	for _, e := range letters {
		l := e.GetLetter()
		if !held[e.Offset] {
			continue
		}
		if l.EventOffset < start {
			return nil, nil, fmt.Errorf("%w: offset %d: retention removed its event (bus offset %d of partition %d, which starts at %d); "+
				"wail cannot tell whether a newer event of the key was delivered: drop it (`wail sink dlq drop %s %s %d`)",
				ErrCannotRedrive, e.Offset, l.EventOffset, p, start, r.def.Table, r.def.Name, e.Offset)
		}
		from = min(from, l.EventOffset)
		keys[string(l.Key)] = true
		at[l.EventOffset] = busPos{}
	}
	last, err := r.scanKeys(ctx, p, from, end, keys, at)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range letters {
		l := e.GetLetter()
		if !held[e.Offset] {
			// Settled before the claim, or held by another claim: as
			// this redrive would have (another redrive), or not.
			res, h := claimed.Settled[e.Offset], claimed.Held[e.Offset]
			switch a := res.GetAction(); {
			case a == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || a == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED:
				out = append(out, res)
			default:
				lost = append(lost, dlq.Raced{Offset: e.Offset, Resolution: res, Claim: h})
			}
			continue
		}
		var res *wailv1.DeadLetterResolution
		if n, ok := last[string(l.Key)]; ok && n.offset > l.EventOffset && n.version > l.Event.GetVersion() {
			res = &wailv1.DeadLetterResolution{Offset: e.Offset, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED,
				AtUs: time.Now().UnixMicro(), SupersededByVersion: n.version, SupersededByOffset: n.offset, ClaimId: c.ID}
		} else {
			// The letter's event must be where it says on the bus: its
			// position is what orders it (a letter of an older wail
			// recorded a snapshot row at offset 0 of partition 0).
			if b := at[l.EventOffset]; b.key != string(l.Key) || b.version != l.Event.GetVersion() {
				return out, lost, fmt.Errorf("%w: offset %d: bus offset %d of partition %d holds no event of its key at v%d "+
					"(a row of the sink's snapshot dead-lettered by an older wail, which recorded no bus position): "+
					"wail cannot order it against the key's events: drop it (`wail sink dlq drop %s %s %d`)",
					ErrCannotRedrive, e.Offset, l.EventOffset, p, l.Event.GetVersion(), r.def.Table, r.def.Name, e.Offset)
			}
			ev := l.Event
			if l.EventStripped {
				if ev, err = r.busEvent(ctx, p, l.EventOffset); err != nil {
					return out, lost, fmt.Errorf("dead letter %d: %w", e.Offset, err)
				}
			}
			// As a delivery asks before each attempt: a process that
			// lost the partition sends nothing more of it.
			if !r.owns(p) {
				return out, lost, errNotOwned
			}
			beforeResend()
			if err := r.resend(ctx, p, l.EventOffset, ev); err != nil {
				return out, lost, fmt.Errorf("dead letter %d: %w; it stays unsettled: fix the endpoint, then redrive again", e.Offset, err)
			}
			res = &wailv1.DeadLetterResolution{Offset: e.Offset, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN,
				AtUs: time.Now().UnixMicro(), RedriveVersion: ev.Version, ClaimId: c.ID}
		}
		if err := q.Settle(ctx, []*wailv1.DeadLetterResolution{res}); err != nil {
			return out, lost, err
		}
		delete(held, e.Offset)
		out = append(out, res)
	}
	return out, lost, nil
}

// scanKeys reads partition p over [from, end) and returns the last event
// of each key of keys, filling at with the key and version of the event
// of those keys at its offsets (memory: a key and version per letter, not
// the events).
func (r *runner) scanKeys(ctx context.Context, p int32, from, end int64, keys map[string]bool, at map[int64]busPos) (map[string]newest, error) {
	last := map[string]newest{}
	if from >= end {
		return last, nil
	}
	rd, err := r.m.log.NewReader(r.table.Topic, p, from)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d at %d: %w", r.table.Topic, p, from, err)
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d at %d: %w", r.table.Topic, p, rd.Position(), err)
		}
		for i := range recs {
			rec := &recs[i]
			if rec.Offset >= end {
				continue
			}
			// The row key, as letters record it: a typed table's
			// record key is framed (like with like).
			ev, ok := decode(rec)
			if !ok || !keys[string(ev.Key)] {
				continue // not an event (never delivered), or another key
			}
			last[string(ev.Key)] = newest{offset: rec.Offset, version: ev.Version}
			if _, ok := at[rec.Offset]; ok {
				at[rec.Offset] = busPos{key: string(ev.Key), version: ev.Version}
			}
		}
	}
	return last, nil
}

// busEvent reads the event at offset of partition p (a stripped letter's).
func (r *runner) busEvent(ctx context.Context, p int32, offset int64) (*wailv1.ChangeEvent, error) {
	rd, err := r.m.log.NewReader(r.table.Topic, p, offset)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d at %d: %w", r.table.Topic, p, offset, err)
	}
	defer rd.Close()
	for {
		recs, err := rd.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d at %d: %w", r.table.Topic, p, offset, err)
		}
		for i := range recs {
			if recs[i].Offset < offset {
				continue
			}
			ev, ok := decode(&recs[i])
			if recs[i].Offset > offset || !ok {
				return nil, fmt.Errorf("%w: no event at bus offset %d of partition %d", ErrCannotRedrive, offset, p)
			}
			return ev, nil
		}
	}
}

// resend POSTs one event again, once, as the request of its bus offset.
func (r *runner) resend(ctx context.Context, p int32, offset int64, ev *wailv1.ChangeEvent) error {
	b := &wailv1.SinkBatch{Sink: r.def.Name, Table: r.def.Table, Partition: p, Events: []*wailv1.ChangeEvent{ev},
		FirstOffset: offset, NextOffset: offset + 1}
	body, ctype, err := encode(r.def.Format, b)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	delivery := r.def.Table + "/" + strconv.Itoa(int(p)) + "/" + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(offset+1, 10)
	a := post(ctx, r.m.client, r.def, delivery, 1, body, ctype, time.Now())
	if judge(a.status) != accepted {
		return fmt.Errorf("%w: %w", ErrEndpoint, a.err)
	}
	r.delivered(1)
	return nil
}

// DeadLetters returns the queue of a sink's dead letters; a sink that was
// dropped keeps its letters, readable while its topic exists.
func (m *Manager) DeadLetters(ctx context.Context, table, name string) (*dlq.Queue, error) {
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return nil, err
	}
	topic := DeadLetterTopic(table, name)
	q := m.queue(table, name)
	if find(sinks, table, name) >= 0 {
		return q, nil
	}
	if _, _, err := m.log.Bounds(ctx, topic, 0); errors.Is(err, intentlog.ErrUnknownTopic) {
		return nil, notFound(table, name)
	} else if err != nil {
		return nil, fmt.Errorf("dead letters of sink %s: %w", name, err)
	}
	return q, nil
}

// Redrive delivers the selected dead letters of a sink again (see the top
// of this file) and answers the resolutions: the ones appended, then those
// of letters already settled; the first Selection.Limit of them, and how
// many in all. The sink must run in this process; letters of partitions
// another process delivers now are left alone, and the error
// (ErrNotRunning) says which, once the others are redriven. Memory: a
// page of letters (package dlq: up to 1000 letters and 4 MiB), the first
// Selection.Limit resolutions and the first 100 letters lost to another
// request (the others are counted).
func (m *Manager) Redrive(ctx context.Context, table, name string, sel dlq.Selection) (dlq.Answer, error) {
	var out dlq.Answer
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return out, err
	}
	i := find(sinks, table, name)
	if i < 0 {
		return out, notFound(table, name)
	}
	q := m.queue(table, name)
	var (
		lost      dlq.RacedLetters
		elsewhere = map[int32]bool{}
		limit     = sel.Answered()
	)
	settled, err := q.Open(ctx, sel, func(batch []*wailv1.DeadLetterEntry) error {
		r, err := m.runner(sinks[i])
		if err != nil {
			return err
		}
		res, raced, parts, err := r.redrive(ctx, q, batch)
		out.Add(res, limit)
		for _, l := range raced {
			lost.Add(l)
		}
		for _, p := range parts {
			elsewhere[p] = true
		}
		return err
	})
	out.Add(settled, limit)
	if err == nil && lost.Len() > 0 {
		err = q.RacedError("redriven", lost, out.Total)
	}
	if (err == nil || errors.Is(err, dlq.ErrRaced)) && len(elsewhere) > 0 {
		parts := slices.Sorted(maps.Keys(elsewhere))
		err = errors.Join(err, fmt.Errorf("%w: the letters of partitions %v of sink %s were not redriven: this process does not deliver them now "+
			"(another process does, or the sink is joining its group): redrive them against the process that delivers them "+
			"(`wail group describe %s %s` against a server shows the partitions it delivers), or try again", ErrNotRunning, parts, name, table, GroupName(name)))
	}
	return out, err
}

// queue is the queue of a sink's dead letters (letters of the format
// before the DLQ one read too).
func (m *Manager) queue(table, name string) *dlq.Queue {
	return dlq.NewSinkQueue(m.log, table, name, DeadLetterTopic(table, name), legacyLetter(name))
}

// runner returns the runner of a sink in this process, or why not.
func (m *Manager) runner(s *wailv1.Sink) (*runner, error) {
	m.mu.Lock()
	r := m.runners[[2]string{s.Table, s.Name}]
	m.mu.Unlock()
	switch {
	case r != nil:
		return r, nil
	case s.Paused:
		return nil, fmt.Errorf("%w: sink %s of %s is paused: `wail sink resume %s %s`, then redrive (letters are delivered by the sink, in order with its events)",
			ErrNotRunning, s.Name, s.Table, s.Table, s.Name)
	}
	return nil, fmt.Errorf("%w: this process does not run sink %s of %s (sinks.enabled is off here, or the table is not served yet): "+
		"redrive against the process that runs it (--addr)", ErrNotRunning, s.Name, s.Table)
}
