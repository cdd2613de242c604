package group

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
)

// Message is what a member's stream sends: partitions granted or revoked,
// or a batch of one partition's records.
type Message struct {
	Granted []Grant
	Revoked []int32

	Partition int32
	Epoch     uint64
	Records   []intentlog.Record
	// Next is the partition's position after Records (records passed
	// without being sent, such as envelope deletes' tombstones, included).
	Next int64
	// Gap, on a message without records, says that the partition's reader
	// passed offsets retention removed before it read them: Next is past
	// them.
	Gap *Gap

	held int64 // bytes of the session's read-ahead budget it holds
}

// Gap is a range of offsets [From, To) of a partition that retention
// removed before a member read them: their events are lost to the group.
type Gap struct{ From, To int64 }

// Session is a live member: its stream takes Messages until Done.
type Session struct {
	gr   *grp
	id   string
	out  chan Message
	done chan struct{}
	err  error // why it ended, set before done is closed

	mu      sync.Mutex
	readers map[int32]context.CancelFunc
	rds     map[int32]partReader // the last reader of each partition (epochs.go)
	wg      sync.WaitGroup
	ended   bool
	// ctl holds grants and revocations, sent before any record batch;
	// signal wakes Next when one is queued.
	ctl     []Message
	signal  chan struct{}
	pending *Message // a batch taken from out while ctl was not empty

	// budget bounds the record bytes read ahead (Groups.WithReadAhead;
	// nil: unbounded); sent is what the message Next returned last holds,
	// released at the next call, once the stream sent it.
	budget *readahead.Stream
	sent   int64
	// sending is when Next last returned a message, zero once the stream
	// asked for the next (it sent that one): a stream that takes no
	// message for longer than the lease is stuck (its client stopped
	// reading) and the member is ended (expireLocked).
	sending time.Time
}

// sessionBuffer is how many messages a member holds before its readers
// wait for its stream.
const sessionBuffer = 16

// Join makes member id a member of the group name of table t, starting a
// new group's partitions at their first or last offsets. The member takes
// its Messages until Done; Leave (or the end of ctx) removes it.
//
// In a group shared by processes, a member of a new group is answered
// only once the group's start is in its shared entry (waitStarts).
func (g *Groups) Join(ctx context.Context, t Table, name, id string, latest StartLatest) (*Session, error) {
	s, err := g.join(ctx, t, name, id, latest)
	if err != nil {
		return nil, err
	}
	if err := g.waitStarts(ctx, s); err != nil {
		s.Leave()
		return nil, err
	}
	return s, nil
}

// join is Join, without waiting for a shared group's start.
func (g *Groups) join(ctx context.Context, t Table, name, id string, latest StartLatest) (*Session, error) {
	// The group's key lock is held until the member is in: a group
	// without members may be reloaded (or reset) meanwhile. Not g.mu: the
	// load waits on the log, and other groups must not wait for it.
	unlock, err := g.lockKey(ctx, [2]string{t.Name, name})
	if err != nil {
		return nil, err
	}
	defer unlock()
	gr, err := g.load(ctx, t, name, latest)
	if err != nil {
		return nil, err
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	ch, err := gr.core.Join(id, time.Now())
	if err != nil {
		return nil, err
	}
	s := &Session{gr: gr, id: id, out: make(chan Message, sessionBuffer), done: make(chan struct{}),
		readers: map[int32]context.CancelFunc{}, signal: make(chan struct{}, 1)}
	s.budget = g.pool.Stream(g.readAhead)
	gr.sessions[id] = s
	gr.apply(ch)
	g.kickSync()
	return s, nil
}

// Next returns the member's next message: grants and revocations first,
// in order, then record batches (pass them through Check before sending).
// It fails with why the session ended, or ctx's error.
func (s *Session) Next(ctx context.Context) (Message, error) {
	s.mu.Lock()
	if s.sent > 0 { // the stream sent the last message: its bytes are free
		s.budget.Release(s.sent)
		s.sent = 0
	}
	s.sending = time.Time{}
	s.mu.Unlock()
	m, err := s.next(ctx)
	if err == nil {
		s.mu.Lock()
		s.sending = time.Now()
		s.mu.Unlock()
	}
	return m, err
}

// next waits for the member's next message (Next).
func (s *Session) next(ctx context.Context) (Message, error) {
	for {
		s.mu.Lock()
		if len(s.ctl) > 0 {
			m := s.ctl[0]
			s.ctl = s.ctl[1:]
			s.mu.Unlock()
			return m, nil
		}
		if p := s.pending; p != nil {
			s.pending = nil
			s.sent = p.held
			s.mu.Unlock()
			return *p, nil
		}
		s.mu.Unlock()
		select {
		case <-s.signal:
		case m := <-s.out:
			s.mu.Lock()
			if len(s.ctl) > 0 { // a grant queued meanwhile goes first
				s.pending = &m
				s.mu.Unlock()
				continue
			}
			s.sent = m.held
			s.mu.Unlock()
			return m, nil
		case <-s.done:
			return Message{}, s.err
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// Hold keeps the read-ahead bytes of the message Next returned last
// counted until the returned release is called (once the message was
// delivered or dropped; more calls do nothing), rather than until the
// next Next: for a member that queues messages after Next, such as a
// sink's partition queues, so that what it queued counts against its
// budget. What is not released when the session ends goes back with the
// rest of its budget.
func (s *Session) Hold() (release func()) {
	s.mu.Lock()
	n := s.sent
	s.sent = 0
	s.mu.Unlock()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			s.release(n)
		}
	}
}

// Done is closed when the member was ended (Err says why).
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (after Done).
func (s *Session) Err() error { return s.err }

// stuck reports whether the stream took the message Next returned
// last more than lease before now; under gr.mu.
func (s *Session) stuck(now time.Time, lease time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.sending.IsZero() && now.Sub(s.sending) > lease
}

// Leave removes the member; its partitions go to the others.
func (s *Session) Leave() {
	s.gr.mu.Lock()
	s.gr.leave(s, errors.New("left"))
	s.gr.mu.Unlock()
	s.wg.Wait()
}

// Check reports whether a batch of records may still be sent to the
// member (it owns the partition at the message's epoch), and records the
// delivery. Grants and revocations always pass.
func (s *Session) Check(m Message) bool {
	if m.Granted != nil || m.Revoked != nil {
		return true
	}
	s.gr.mu.Lock()
	defer s.gr.mu.Unlock()
	now := time.Now()
	if !s.gr.validNow(now) { // shared: this process's lease lapsed
		return false
	}
	return s.gr.core.Delivered(m.Partition, m.Epoch, m.Next, len(m.Records) > 0, now)
}

// leave ends s and gives its partitions away; under gr.mu.
func (gr *grp) leave(s *Session, why error) {
	if gr.sessions[s.id] != s {
		return
	}
	delete(gr.sessions, s.id)
	s.end(why)
	gr.apply(gr.core.Leave(s.id, time.Now()))
	gr.g.kickSync()
}

// end stops the session's readers and closes done; under gr.mu.
func (s *Session) end(why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	for _, cancel := range s.readers {
		cancel()
	}
	s.budget.Close() // what is queued goes back to the process's budget
	s.err = why
	close(s.done)
}

// apply stops the readers of revoked and draining partitions and starts
// those of granted ones (at the committed offsets), and tells the members
// (of draining partitions, once they are revoked); under gr.mu.
func (gr *grp) apply(ch Change) {
	for id, ps := range ch.Draining {
		if s := gr.sessions[id]; s != nil {
			s.stopReaders(ps)
		}
	}
	for id, ps := range ch.Revoked {
		if s := gr.sessions[id]; s != nil {
			s.stopReaders(ps)
			s.notify(Message{Revoked: ps})
		}
	}
	ids := make([]string, 0, len(ch.Granted))
	for id := range ch.Granted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := gr.sessions[id]
		if s == nil {
			continue
		}
		s.notify(Message{Granted: ch.Granted[id]})
		for _, gt := range ch.Granted[id] {
			s.startReader(gr.topic, gt)
		}
	}
}

func (s *Session) stopReaders(ps []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		if cancel := s.readers[p]; cancel != nil {
			cancel()
			delete(s.readers, p)
		}
	}
}

// notify queues a grant or revocation without blocking the group.
func (s *Session) notify(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl = append(s.ctl, m)
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *Session) startReader(topic string, gt Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.readers[gt.Partition] = cancel
	at := s.gr.startAt(gt.Partition, gt.Offset) // under gr.mu (apply)
	pin := s.gr.topicID
	if f, ok := s.gr.fences[gt.Partition]; ok && f.epoch == gt.Epoch {
		// Shared by processes: the topic the grant fenced, whose
		// committed offset the reader starts at.
		if tc, ok := f.c.(intentlog.TopicIDReader); ok {
			pin = tc.TopicID()
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.read(ctx, topic, pin, gt, at)
		if err != nil && ctx.Err() == nil {
			switch {
			case errors.Is(err, ErrPositionLost):
				// The member's stream gets the error, which a client
				// retries: the operator learns it here.
				s.gr.g.logger.Error("consumer group: a member's partition lost the group's position; the member ends",
					"table", s.gr.table, "group", s.gr.name, "member", s.id, "partition", gt.Partition, "err", err)
			case errors.Is(err, intentlog.ErrTruncated):
				s.gr.g.logger.Error("consumer group: a member's partition lost events it was sent; the member ends, and joins again from the group's committed offset",
					"table", s.gr.table, "group", s.gr.name, "member", s.id, "partition", gt.Partition, "err", err)
			}
			s.gr.mu.Lock()
			s.gr.leave(s, fmt.Errorf("read %s/%d: %w", topic, gt.Partition, err))
			s.gr.mu.Unlock()
		}
	}()
}

// read sends a partition's records from the grant's offset on, at: the
// offset with the leader epoch committed with it, validated first when
// known (epochs.go). Records of a topic whose id is not pin (when not
// zero: grp.topicID, or the topic a shared group's grant fenced) end the
// reader with intentlog.ErrUnknownTopic: the topic was deleted and
// created again, and at is the old one's.
func (s *Session) read(ctx context.Context, topic string, pin intentlog.TopicID, gt Grant, at intentlog.EpochOffset) error {
	tries := 0       // answers out of range in a row
	dropped := false // the last reader's read was dropped (Stream.Take)
	for {
		r, err := intentlog.ReaderAt(s.gr.g.log, topic, gt.Partition, at)
		if errors.Is(err, intentlog.ErrOffsetOutOfRange) {
			tries++
			off, err := s.outOfRange(ctx, topic, gt.Partition, at.Offset, err, tries)
			if err != nil {
				return err
			}
			if off != at.Offset {
				if !s.gap(ctx, gt, at.Offset, off) {
					return nil
				}
				at = intentlog.EpochOffset{Offset: off, Epoch: -1}
			}
			continue
		}
		if err != nil {
			return err
		}
		if dropped {
			// Where a reader of pin's topic stopped: another topic of
			// the name is ErrUnknownTopic, not the old one truncated.
			intentlog.PinTopicID(r, pin)
		}
		s.setReader(gt.Partition, gt.Epoch, r, dropped)
		dropped = false
		for {
			// Past the process's budget, not before the stream took
			// what the member holds: a batch read would wait, uncounted.
			if s.budget.Wait(ctx) != nil {
				r.Close()
				return nil
			}
			from := r.Position()
			recs, err := r.Next(ctx)
			if err != nil {
				r.Close()
				if ctx.Err() != nil {
					return nil
				}
				if tr, ok := errors.AsType[*intentlog.Truncation](err); ok && tr.From >= 0 {
					return s.truncated(gt.Partition, tr, err)
				}
				if errors.Is(err, intentlog.ErrEpochUnknown) {
					return s.epochUnknown(gt.Partition, at.Offset, err)
				}
				if !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
					return err
				}
				tries++
				pos := r.Position()
				off, err := s.outOfRange(ctx, topic, gt.Partition, pos, err, tries)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				// Again where this reader stopped, with the epoch of
				// what it read before; elsewhere (past a retention
				// gap, told) unvalidated.
				at = intentlog.EpochOffset{Offset: off, Epoch: -1}
				if off == pos {
					at.Epoch = intentlog.EpochBefore(r, pos)
				} else if !s.gap(ctx, gt, pos, off) {
					return nil
				}
				break
			}
			if err := sameTopic(r, pin); err != nil {
				r.Close()
				return err
			}
			tries = 0
			m := Message{Partition: gt.Partition, Epoch: gt.Epoch, Next: r.Position()}
			var size int64
			for _, rec := range recs {
				// An envelope delete's tombstone (no value, no
				// headers) is passed; a typed table's delete is a
				// tombstone with the event's headers: an event.
				if rec.Value != nil || len(rec.Headers) > 0 {
					m.Records = append(m.Records, rec)
					size += recordBytes(&rec)
				}
			}
			var ok bool
			if m.held, ok, err = s.budget.Take(ctx, size); err != nil {
				r.Close()
				return nil // ctx ended: the reader stops
			} else if !ok {
				// The process's read-ahead is full and the member holds
				// records: drop the read rather than hold it uncounted,
				// and read it again (validated by the epoch read before
				// it) once the member may take it.
				at = intentlog.EpochOffset{Offset: from, Epoch: intentlog.EpochBefore(r, from)}
				r.Close()
				if s.budget.Room(ctx, size) != nil {
					return nil
				}
				dropped = true
				break
			}
			select {
			case s.out <- m:
			case <-ctx.Done():
				s.release(m.held)
				r.Close()
				return nil
			}
		}
	}
}

// sameTopic fails with intentlog.ErrUnknownTopic when r read a topic
// whose id is not pin (zero: any).
func sameTopic(r intentlog.Reader, pin intentlog.TopicID) error {
	tr, ok := r.(intentlog.TopicIDReader)
	if !ok || pin == (intentlog.TopicID{}) {
		return nil
	}
	if id := tr.TopicID(); id != (intentlog.TopicID{}) && id != pin {
		return fmt.Errorf("%w: deleted and created again since the partition's offset was read (id %x, now %x): "+
			"the group's offsets are the old topic's", intentlog.ErrUnknownTopic, pin[:], id[:])
	}
	return nil
}

// gap tells the member that its reader of gt's partition passed offsets
// [from, to), which retention removed (outOfRange): a message of its own,
// whose Next, past them, it may acknowledge. It reports false when ctx
// ended first.
func (s *Session) gap(ctx context.Context, gt Grant, from, to int64) bool {
	select {
	case s.out <- Message{Partition: gt.Partition, Epoch: gt.Epoch, Next: to, Gap: &Gap{From: from, To: to}}:
		return true
	case <-ctx.Done():
		return false
	}
}

// truncated is the error that ends a member whose partition's log lost
// events below its position (cause, tr: Kafka's leader-epoch check after
// an unclean leader election) while new events take those offsets again.
// A member that joins again starts at the group's committed offset: not
// past where the log diverges, it reads the new events (the error, a
// read's, is retried); past it, the new events below it are never
// delivered, and only the operator can move the position back:
// ErrPositionLost, as for a position past the log's end.
func (s *Session) truncated(p int32, tr *intentlog.Truncation, cause error) error {
	s.gr.mu.Lock()
	committed := s.gr.core.Committed(p)
	s.gr.mu.Unlock()
	what := fmt.Sprintf("partition %d: the log diverges from offset %d below what was read (up to %d): it lost events "+
		"(an unclean Kafka leader election, a broker that lost acknowledged writes) and new events take those offsets again", p, tr.From, tr.Read)
	if committed <= tr.From {
		return fmt.Errorf("%s; the group's committed offset %d is not past it: a member that joins again reads the new events: %w", what, committed, cause)
	}
	return fmt.Errorf("%w (%w): %s; the group's committed offset %d is past it: the new events from offset %d on are not delivered "+
		"to a member that joins again; set the group's positions before the loss with `wail group reset` (--to a time or a cursor)",
		ErrPositionLost, cause, what, committed, tr.From)
}

// epochUnknown is the error that ends a member whose partition's reader,
// started at offset (the group's committed offset) and its leader epoch,
// found that the log has no record of that epoch (cause: Kafka answered
// UNDEFINED_EPOCH_OFFSET, its leader-epoch history lost, or the topic
// another one of that name): whether the log lost events below the
// offset, and new events took their offsets, cannot be checked. Read on,
// the member could pass them for ever; a member that joins again finds
// the same: ErrPositionLost, until the operator sets the positions.
func (s *Session) epochUnknown(p int32, offset int64, cause error) error {
	return fmt.Errorf("%w (%w): partition %d: the group's committed offset %d cannot be validated: the log has no record of the leader "+
		"epoch committed with it, so whether it lost events below the offset (an unclean Kafka leader election, a broker that lost its "+
		"leader-epoch checkpoint, the topic deleted and created again) and new events took their offsets is not known; check the partition "+
		"and set the group's positions with `wail group reset` (--to a time or a cursor)", ErrPositionLost, cause, p, offset)
}

// outOfRange returns where a reader of p goes on after the log answered
// its position pos out of range (cause; the tries-th time in a row),
// from the log's bounds now. Below the start, retention removed those
// events while the group was away or slow: they are gone for every
// reader, so from the start (as Kafka's auto.offset.reset=earliest),
// logged with what was skipped. Past the end, the log lost its tail (an
// unclean Kafka leader election, a repair of the embedded log) and new
// events take those offsets again: ErrPositionLost (nothing is delivered
// again from the start, and no position moves back). Within the bounds,
// the answer was transient: the same position again, after a pause
// (intentlog.PlaceOutOfRange).
func (s *Session) outOfRange(ctx context.Context, topic string, p int32, pos int64, cause error, tries int) (int64, error) {
	o, err := intentlog.PlaceOutOfRange(ctx, s.gr.g.log, topic, p, pos, cause, tries)
	if err != nil {
		return 0, err
	}
	switch o.Placement {
	case intentlog.PastEnd:
		return 0, fmt.Errorf("%w (%w): partition %d: position %d is past the log's end %d (the log lost its tail: an unclean Kafka leader election, "+
			"or a repair of the embedded log's tail); new events take those offsets again and where the group stands among them is not known; "+
			"join again (a member starts at the group's committed offset); if that is past the end too, set the group's positions with "+
			"`wail group reset` (--to a time or a cursor)", ErrPositionLost, cause, p, pos, o.End)
	case intentlog.BelowStart:
		s.gr.g.gapCount.Add(s.gr.table, s.gr.name, pos, o.Start)
		s.gr.g.logger.Warn(fmt.Sprintf("consumer group: retention removed events of partition %d before the group read them: skipped %d offsets, "+
			"reading on from the log's start", p, o.Start-pos),
			"table", s.gr.table, "group", s.gr.name, "member", s.id, "partition", p, "from", pos, "to", o.Start,
			"action", "keep log.event_retention above how long the group's members may stay away or fall behind")
		return o.Start, nil
	}
	return pos, nil
}

// release gives n bytes back to the read-ahead budget.
func (s *Session) release(n int64) {
	s.budget.Release(n)
}

// recordBytes is what a record counts against the read-ahead budget.
func recordBytes(r *intentlog.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// Ack is an acknowledgement of a partition: every record before Next was
// processed.
type Ack struct {
	Partition int32
	Epoch     uint64
	Next      int64
}

// Ack commits acknowledgements of member id durably, within half the
// lease (the group's other calls wait for it). Those of partitions
// it no longer owns (or at another epoch) are refused with ErrNotOwner
// and not committed; the others are committed. It fails with ErrNotMember
// when id is not a member, and with ErrInvalidAck, committing nothing,
// when acks name a partition the table does not have, or one twice, or a
// next below 0.
func (g *Groups) Ack(ctx context.Context, t Table, name, id string, acks []Ack) (refused map[int32]error, err error) {
	// One entry per partition of the table: with two, one committed and
	// the other refused, the answer said refused for a partition it
	// committed (refusals are per partition).
	seen := make(map[int32]bool, len(acks))
	for _, a := range acks {
		switch {
		case a.Partition < 0 || a.Partition >= t.Partitions:
			return nil, fmt.Errorf("%w: partition %d does not exist (table %s has %d): nothing was committed", ErrInvalidAck, a.Partition, t.Name, t.Partitions)
		case seen[a.Partition]:
			return nil, fmt.Errorf("%w: partition %d is acknowledged twice in one request: send one entry per partition (the highest next): nothing was committed",
				ErrInvalidAck, a.Partition)
		case a.Next < 0:
			return nil, fmt.Errorf("%w: partition %d: next %d is no position (an event's next, as delivered): nothing was committed",
				ErrInvalidAck, a.Partition, a.Next)
		}
		seen[a.Partition] = true
	}
	g.mu.Lock()
	gr := g.groups[[2]string{t.Name, name}]
	g.mu.Unlock()
	if gr == nil {
		return nil, fmt.Errorf("%w: group %q of %s has no live members here (the server restarted?): join again", ErrNotMember, name, t.Name)
	}
	// The lock is held across the durable commit, so that a partition
	// handed over meanwhile starts at the offset committed here.
	gr.mu.Lock()
	defer gr.mu.Unlock()
	// See expire; it also moves a draining partition these
	// acknowledgements completed (Handover).
	defer func() { gr.expireLocked(time.Now()) }()
	if gr.sessions[id] == nil {
		return nil, fmt.Errorf("%w: %q is not a member of group %q of %s (it left or its lease expired): join again", ErrNotMember, id, name, t.Name)
	}
	if !gr.sameTable(t) {
		// Its offsets belong to the dropped table's topic: committed on
		// the new one's, they would skip its first events.
		return nil, fmt.Errorf("%w: %q is a member of group %q of a table %s that was dropped since and created again: join again", ErrNotMember, id, name, t.Name)
	}
	commit := map[int32]int64{}
	epochs := map[int32]uint64{}
	leaders := map[int32]int32{} // the leader epoch of the event before each offset (epochs.go)
	s := gr.sessions[id]
	refused = map[int32]error{}
	now := time.Now()
	if !gr.validNow(now) {
		gr.lapse(now)
	}
	for _, a := range acks {
		move, err := gr.core.Ack(id, a.Partition, a.Epoch, a.Next)
		if err != nil {
			refused[a.Partition] = err
			continue
		}
		if move && a.Next > commit[a.Partition] {
			commit[a.Partition], epochs[a.Partition] = a.Next, a.Epoch
			leaders[a.Partition] = s.leaderEpoch(a.Partition, a.Epoch, a.Next)
		}
	}
	if len(commit) > 0 {
		// Bounded here, whatever the client's deadline: the group waits
		// on this commit.
		ctx, cancel := context.WithTimeout(ctx, g.lease/2)
		defer cancel()
		if g.shared != nil {
			// and before this process's lease lapses: past it, another
			// process may own the partitions (a commit the bus applies
			// after its deadline fails on the fence: fence.go)
			var c2 context.CancelFunc
			ctx, c2 = context.WithDeadline(ctx, gr.sh.valid)
			defer c2()
		}
		if g.fencer != nil && g.shared != nil {
			// Fenced, the commit needs no lock: a partition that moves
			// meanwhile is fenced first, so the commit either landed
			// before its next owner read its position or fails. Other
			// acknowledgements of the group go on meanwhile.
			cs := gr.committers(commit, epochs, refused)
			gr.mu.Unlock()
			errs := commitFenced(ctx, cs, commit, leaders)
			gr.mu.Lock()
			for p, err := range errs {
				if errors.Is(err, intentlog.ErrFenced) {
					gr.dropFenced(p, epochs[p])
				}
			}
			if err := fencedResult(errs, commit, refused); err != nil {
				return nil, fmt.Errorf("group %s of %s: commit: %w", name, t.Name, err)
			}
		} else if g.fencer != nil {
			// One process serves the group, on a log that may apply a
			// commit after its client gave up (Kafka): each owner commits
			// through a committer it fenced the partition with, so that
			// a previous owner's commit (or one from before a reset)
			// landing late fails instead of moving the position back.
			cs, err := gr.ownCommitters(ctx, commit, epochs)
			if err != nil {
				return nil, fmt.Errorf("group %s of %s: commit: %w", name, t.Name, err)
			}
			if err := fencedResult(commitFenced(ctx, cs, commit, leaders), commit, refused); err != nil {
				return nil, fmt.Errorf("group %s of %s: commit: %w", name, t.Name, err)
			}
		} else if err := intentlog.CommitAt(ctx, g.log, LogGroup(name), t.Topic, withEpochs(commit, leaders)); err != nil {
			return nil, fmt.Errorf("group %s of %s: commit: %w", name, t.Name, err)
		}
		now := time.Now()
		if !gr.validNow(now) {
			// The commit returned after this process's lease could lapse
			// (the process was paused mid-commit): another process may
			// have read the committed offsets before it landed. Refused:
			// only a commit that returned within the lease is accepted,
			// so the next owner always starts at or past it.
			for p := range commit {
				refused[p] = fmt.Errorf("%w: partition %d: the commit returned after this process's lease on the group lapsed "+
					"(it may now be another member's, which gets these events again)", ErrNotOwner, p)
			}
			gr.lapse(now)
			return refused, nil
		}
		for p, at := range withEpochs(commit, leaders) {
			gr.core.Commit(p, epochs[p], at.Offset, now)
			gr.knownAt(p, at)
			gr.committedAt(p, now)
		}
	}
	return refused, nil
}
