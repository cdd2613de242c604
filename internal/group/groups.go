package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
	"github.com/wail-cdc/wail/internal/store"
)

// ErrLeaseExpired ends a member whose acknowledgement was overdue.
var ErrLeaseExpired = errors.New("lease expired")

// ErrNotMember: an acknowledgement of a member that is not in the group
// (it left, was expired, or the server restarted).
var ErrNotMember = errors.New("not a member of the group")

// ErrMembers: a reset of a group that has live members.
var ErrMembers = errors.New("the group has live members")

// ErrPositionLost ends a member whose partition's log no longer reaches
// its position: the log lost its tail (an unclean Kafka leader election,
// a repair of the embedded log) and new events take those offsets again,
// so where the group stands among them is not known.
var ErrPositionLost = errors.New("the partition's log lost the group's position")

// ErrTableDropped ends the members of a table's groups when the table is
// dropped (TableDropped).
var ErrTableDropped = errors.New("the group's table was dropped")

// registryTopic lists the groups ever created, one record per table and
// group (key "table/group"): what `wail group ls` reads. Its value is the
// id of the table's topic the group's positions were of and the table's
// creation time (registryValue; empty when the log has no topic ids, or
// written by an older wail), which a load that finds no positions
// compares (positionsLost). A group that took a snapshot also has a
// record "table/group/snapshot" (not a group name: List skips it) saying
// whose snapshot's end its positions are (CommittedSnapshot).
const registryTopic = "wail.groups"

var groupName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$`)

// maxName is the length of the longest name groupName takes.
const maxName = 128

// ValidateName accepts 1-128 letters, digits, '.', '_' and '-', starting
// with a letter or digit (also used for member ids).
func ValidateName(what, name string) error {
	if !groupName.MatchString(name) {
		if len(name) > 2*maxName { // quoted whole, a client's megabyte came back 4 times over
			return fmt.Errorf("invalid %s %.*q... (%d bytes): use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
				what, maxName, name, len(name))
		}
		return fmt.Errorf("invalid %s %q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", what, name)
	}
	return nil
}

// LogGroup is the name a group's offsets are committed under in the log
// (a Kafka consumer group id on Kafka).
func LogGroup(group string) string { return "wail.consumer." + group }

// Groups runs the consumer groups of a process over a log.
type Groups struct {
	log   intentlog.Log
	lease time.Duration

	mu     sync.Mutex
	groups map[[2]string]*grp // by table, group
	// keys: per group, the lock held by what loads, reloads or removes
	// its state (Join's load, reset, a snapshot claim wanted) across their
	// I/O; mu is held only around the maps, so that a log that stalls one
	// group's join holds up no other group.
	keys map[[2]string]chan struct{}
	// epochs: the last epoch of each group Reset removed from memory, so
	// that the group loaded again numbers its grants above it (a late
	// acknowledgement of an old grant must not match a new one).
	epochs map[[2]string]uint64
	// recorded: the topic id this process last wrote in each group's
	// registry record (register, registerLater), by table and group: a
	// load with positions writes the record only when it lacks the id,
	// not at every load (a lone member's every reconnect).
	recorded map[[2]string]intentlog.TopicID
	// epochBase: every group's epochs are above it, the clock in
	// microseconds when the process made its Groups, so that they keep
	// increasing across the process's restarts too (an unshared group's
	// only record of them is this process's memory): a sink's redrive
	// claim carries its partition's epoch, and one left by a process that
	// died is taken over only by a claim at an epoch at least as high.
	epochBase uint64
	stop      chan struct{}
	once      sync.Once
	wg        sync.WaitGroup

	// shared mode (Share): membership in the store's catalog
	shared    store.CatalogSwapper
	proc      string
	procLease time.Duration
	exclusive bool
	logger    *slog.Logger
	health    *health.Registry
	kick      chan struct{}
	// fencer: the log fences a partition's commits (Kafka): each
	// partition taken here commits through its own committer (fence.go;
	// unshared, fenced at the owner's first commit).
	fencer intentlog.PartitionFencer

	snaps map[[2]string]*snapLocal // start "snapshot" snapshots on this process (snapclaim.go)

	// readAhead bounds the record bytes each member holds read ahead of
	// its stream (0: only by sessionBuffer messages), within pool (nil:
	// none): WithReadAhead.
	readAhead int64
	pool      *readahead.Pool
	// noAckLease: members are not ended for overdue acknowledgements or
	// a stream that takes no message (WithoutAckLease).
	noAckLease bool
	// refreshEvery: how old the last commit of a position held here may
	// get before it is committed again (refresh.go; 0: never).
	refreshEvery atomic.Int64
	// refreshSet wakes the refresh loop when refreshEvery changes.
	refreshSet chan struct{}
	// gapCount counts the retention gaps members meet (WithRetentionGaps; nil: none).
	gapCount *RetentionGaps
}

// WithoutAckLease keeps members however long they hold events
// unacknowledged or their stream takes no message: for members that live
// in this process and die with it (webhook sinks), whose batch may take
// longer than any lease and must not start over. The lease still bounds
// a partition's drain and a commit. Call it before members join.
func (g *Groups) WithoutAckLease() *Groups {
	g.noAckLease = true
	return g
}

// WithLogger sets where the groups log (default slog.Default(); Share's
// Logger replaces it). Call it before members join.
func (g *Groups) WithLogger(l *slog.Logger) *Groups {
	if l != nil {
		g.logger = l
	}
	return g
}

// WithReadAhead bounds the bytes of records each member's session holds
// read ahead of its stream to max (api.subscription_buffer_bytes, as a
// Subscribe stream's): a message's bytes count from when its partition's
// reader queues it until the member asks for the next message, after
// sending it. A batch larger than max takes the whole budget. Every
// member's read-ahead is also taken from pool (nil: none), the process's
// (api.max_subscription_buffered_bytes), shared with Subscribe streams.
// Call it before members join.
func (g *Groups) WithReadAhead(max int64, pool *readahead.Pool) *Groups {
	g.readAhead, g.pool = max, pool
	return g
}

// New returns the groups of a log; a member whose acknowledgement is
// overdue by lease loses its partitions. Close stops its lease checks.
func New(log intentlog.Log, lease time.Duration) *Groups {
	g := &Groups{log: log, lease: lease, groups: map[[2]string]*grp{}, keys: map[[2]string]chan struct{}{}, epochs: map[[2]string]uint64{}, recorded: map[[2]string]intentlog.TopicID{},
		epochBase: uint64(max(time.Now().UnixMicro(), 0)), stop: make(chan struct{}), kick: make(chan struct{}, 1), refreshSet: make(chan struct{}, 1),
		snaps: map[[2]string]*snapLocal{}, logger: slog.Default()}
	if f, ok := log.(intentlog.PartitionFencer); ok {
		g.fencer = f
	}
	g.refreshEvery.Store(int64(DefaultCommitRefresh))
	g.wg.Add(1)
	go g.expire()
	if g.fencer != nil { // (committers of other logs do not renew: refresh.go)
		g.wg.Add(1)
		go g.refreshLoop()
	}
	return g
}

// lockKey takes the lock of group k (keys), or fails with ctx's error;
// the function returned releases it.
func (g *Groups) lockKey(ctx context.Context, k [2]string) (func(), error) {
	g.mu.Lock()
	l := g.keys[k]
	if l == nil {
		l = make(chan struct{}, 1)
		g.keys[k] = l
	}
	g.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends every member and stops the lease checks.
func (g *Groups) Close() {
	g.once.Do(func() { close(g.stop) })
	g.wg.Wait()
	g.mu.Lock()
	grs := make([]*grp, 0, len(g.groups))
	for _, gr := range g.groups {
		grs = append(grs, gr)
	}
	g.mu.Unlock()
	// Shared entries are left at once, under one deadline: one at a time,
	// a store that does not answer made a shutdown wait lease/4 per group.
	ctx, cancel := context.WithTimeout(context.Background(), g.procLease/4)
	defer cancel()
	var wg sync.WaitGroup
	for _, gr := range grs {
		gr.mu.Lock()
		for _, s := range gr.sessions {
			if g.shared != nil {
				gr.leave(s, errors.New("the server is shutting down"))
			} else {
				s.end(errors.New("the server is shutting down"))
			}
		}
		gr.snap = snapClaim{} // its snapshot stops; the sync below gives the claim up
		gr.mu.Unlock()
		if g.shared != nil {
			// Leave the shared entry, so that the partitions move now
			// rather than after a lease timeout.
			wg.Go(func() {
				if err := g.sync(ctx, gr); err != nil {
					g.logger.Warn("consumer group: could not leave the group's shared entry on shutdown; other processes take its partitions after api.group_lease_timeout",
						"table", gr.table, "group", gr.name, "err", err)
				}
			})
		}
	}
	wg.Wait()
}

type grp struct {
	g           *Groups
	table, name string
	topic       string
	// topicID: the id of the topic when the group was loaded (zero: the
	// log has none, or the group is shared by processes, whose
	// committers are pinned at their grants instead): an unshared
	// group's committers commit only on it, and its members' readers
	// read only it (a topic deleted and created again behind wail's back
	// has another; the core's offsets are not its).
	topicID  intentlog.TopicID
	created  int64      // Table.Created at load (0: unknown)
	mu       sync.Mutex // guards core and sessions
	core     *Core
	sessions map[string]*Session
	sh       sharedLocal // shared mode
	snap     snapClaim   // shared mode: the group's snapshot claim here
	// loaded: its positions were loaded from the log (not only a snapshot
	// claim held before the group has any).
	loaded bool
	// starts: in shared mode, where the partitions without a committed
	// position start (found at load); the process that claims one commits
	// it then (grant), under its lease, as an acknowledgement.
	starts map[int32]int64
	// startsTopic: the id (hex) of the topic starts are of, read before
	// them ("": the log pins no committers; see SharedStarts.Topic).
	startsTopic string
	// fences: in shared mode on a log that fences, the committer of each
	// partition taken here, with the epoch it was taken at.
	fences map[int32]fenced
	// leaders: the committed offsets known here with the leader epoch
	// committed with them (Kafka; epochs.go), where a member that starts
	// the partition has the log validate them.
	leaders map[int32]intentlog.EpochOffset
	// renewed: when the position of each partition held here was last
	// committed here, under any owner (refresh.go).
	renewed map[int32]time.Time
	// refreshFailing: the last refresh of its positions failed (logged
	// once).
	refreshFailing bool
}

// sameTable says whether t is the table the group was loaded for (not
// one dropped and created again under its name since); unknown creation
// times match.
func (gr *grp) sameTable(t Table) bool {
	return gr.created == 0 || t.Created == 0 || gr.created == t.Created
}

// Table describes where a table's events are, for a group.
type Table struct {
	Name       string
	Topic      string
	Partitions int32
	// Created is the table's creation time, Unix microseconds (0:
	// unknown): a table dropped and created again under its name has
	// another, and its groups' members are not the dropped table's.
	Created int64
}

// StartLatest, when true, starts a new group's partitions at their ends;
// otherwise at their first retained offsets.
type StartLatest bool

// lastEpoch is the epoch a group's new core numbers its grants above;
// under g.mu.
func (g *Groups) lastEpoch(k [2]string) uint64 { return max(g.epochs[k], g.epochBase) }

// NeverGave reports whether epoch is above every epoch this process gave
// (or would have given) in group name of table, which is not shared by
// processes: only a process that served the group before this one can
// have given it, its clock ahead of this one's (epochBase), and that
// process is gone (one process serves an unshared group). A sink's
// redrive takes over such a process's claim (sink/redrive.go). Shared
// groups' epochs come from their entry's sequence: false.
func (g *Groups) NeverGave(table, name string, epoch uint64) bool {
	if g.shared != nil {
		return false
	}
	k := [2]string{table, name}
	g.mu.Lock()
	last, gr := g.lastEpoch(k), g.groups[k]
	g.mu.Unlock()
	if gr != nil {
		gr.mu.Lock()
		last = max(last, gr.core.LastEpoch())
		gr.mu.Unlock()
	}
	return epoch > last
}

// load returns the group, under its key's lock (lockKey), loading its
// state from the log
// (and, for a new group, committing its start durably) when it has no
// live members here: a group without members keeps nothing in memory
// that the log does not have (the table may have been dropped and created
// again, the group reset).
func (g *Groups) load(ctx context.Context, t Table, name string, latest StartLatest) (*grp, error) {
	k := [2]string{t.Name, name}
	g.mu.Lock()
	after := g.lastEpoch(k)
	old := g.groups[k]
	g.mu.Unlock()
	if gr := old; gr != nil {
		gr.mu.Lock()
		live := len(gr.sessions) > 0
		n, last, same := gr.core.n, gr.core.LastEpoch(), gr.sameTable(t)
		claim := gr.snap.want != "" || gr.snap.epoch != 0
		gr.mu.Unlock()
		if live && n != t.Partitions {
			// The drop ends them (TableDropped; on another process's
			// drop, at this process's next catalog refresh): the
			// refusal is the log-failing kind, retried.
			return nil, fmt.Errorf("group %s of %s: its members joined when the table had %d partitions; it has %d (dropped and created again): "+
				"they are ended as this server lets go of the dropped table: retry; if this lasts, stop them", name, t.Name, n, t.Partitions)
		}
		if live && !same {
			return nil, fmt.Errorf("group %s of %s: its members joined a table of that name that was dropped since and created again: "+
				"they are ended as this server lets go of the dropped table: retry; if this lasts, stop them", name, t.Name)
		}
		if live && gr.replacedTopic(ctx) {
			live = false // its members were ended: loaded again below
			// Their leaves gave the partitions of each to those still in
			// it, at epochs above last: the new core numbers above them.
			gr.mu.Lock()
			last = gr.core.LastEpoch()
			gr.mu.Unlock()
		}
		if live {
			return gr, nil
		}
		after = max(after, last)
		if !claim {
			// Replaced once loaded (below), not before: a load that
			// fails keeps it, and its syncs still write a leave the
			// entry lacks.
			old = nil
		}
	}
	// The topic's id, read before its offsets: those read are of this
	// id or (the topic deleted and created again meanwhile) of a later
	// one, which the committers pinned to it refuse (ownCommitter).
	pin, err := g.pinID(ctx, t.Topic)
	if err != nil {
		return nil, fmt.Errorf("group %s of %s: %w", name, t.Name, err)
	}
	topicID, startsTopic := pin, hexID(pin)
	if g.shared != nil {
		topicID = intentlog.TopicID{} // pinned at each grant instead
	}
	committedAt, err := intentlog.CommittedAt(ctx, g.log, LogGroup(name), t.Topic)
	if err != nil {
		return nil, fmt.Errorf("group %s of %s: committed offsets: %w", name, t.Name, err)
	}
	committed := intentlog.PlainOffsets(committedAt)
	if latest && len(committed) == 0 {
		lost, err := g.positionsLost(ctx, t, name, pin)
		if err != nil {
			return nil, fmt.Errorf("group %s of %s: %w", name, t.Name, err)
		}
		latest = StartLatest(!lost)
	} else if len(committed) > 0 {
		g.registerLater(ctx, t, name, pin)
	}
	missing := map[int32]int64{}
	for p := range t.Partitions {
		if _, ok := committed[p]; ok {
			continue
		}
		start, end, err := g.log.Bounds(ctx, t.Topic, p)
		if err != nil {
			return nil, fmt.Errorf("group %s of %s: bounds of partition %d: %w", name, t.Name, p, err)
		}
		missing[p] = start
		if latest {
			missing[p] = end
		}
	}
	if len(missing) > 0 {
		if len(committed) == 0 { // a new group: list it
			if err := g.register(ctx, t, name, pin); err != nil {
				return nil, err
			}
		}
		// Shared by processes, the start is committed by the process
		// that claims each partition (grant), not here: a start commit
		// that lands late would move back the positions another
		// process's members acknowledged meanwhile.
		if g.shared == nil {
			// Through committers fenced first (on a log that fences): a
			// start commit that lands late (this join gave up) fails once
			// a member committed, instead of moving its position back.
			fs, _, err := g.fenceAll(ctx, t, name, topicID)
			if err != nil {
				return nil, fmt.Errorf("group %s of %s: commit the start: %w", name, t.Name, err)
			}
			at, err := g.commitAll(ctx, t, name, fs, missing)
			if err != nil {
				return nil, fmt.Errorf("group %s of %s: commit the start: %w", name, t.Name, err)
			}
			if committed == nil {
				committed = map[int32]int64{}
			}
			if committedAt == nil {
				committedAt = map[int32]intentlog.EpochOffset{}
			}
			for p, o := range at {
				committed[p], committedAt[p] = o.Offset, o
			}
			missing = nil
		}
	}
	core := NewCore(t.Partitions, g.lease, committed, after)
	core.shared = g.shared != nil
	if old != nil {
		// Reloaded in place: a member here takes (or waits for) the
		// group's snapshot under this object's claim and lease.
		old.mu.Lock()
		old.topic, old.topicID, old.created, old.core, old.loaded, old.starts = t.Topic, topicID, t.Created, core, true, missing
		old.startsTopic = startsTopic
		old.sh.fixed = g.startsToFix(missing)
		old.leaders = nil
		for p, at := range committedAt {
			old.knownAt(p, at)
		}
		old.mu.Unlock()
		return old, nil
	}
	gr := &grp{g: g, table: t.Name, name: name, topic: t.Topic, topicID: topicID, startsTopic: startsTopic, created: t.Created, core: core, sessions: map[string]*Session{},
		sh: sharedLocal{obs: observed{}, fixed: g.startsToFix(missing)}, loaded: true, starts: missing}
	for p, at := range committedAt {
		gr.knownAt(p, at) // no member yet: nothing else uses gr
	}
	g.mu.Lock()
	g.groups[k] = gr
	g.mu.Unlock()
	return gr, nil
}

// replacedTopic reports whether the topic of gr (an unshared group with
// members, loaded when its topic had gr.topicID) has another id now:
// deleted and created again behind wail's back. Its members are then
// ended: their offsets are the old topic's (refused by their committers
// and readers), and while any is in it a member joining again would join
// the group as loaded and end in turn, the group never loaded again for
// the new topic (TestJoinAfterTopicCreatedAgain). A failed read of the
// id is no answer: false.
func (gr *grp) replacedTopic(ctx context.Context) bool {
	gr.mu.Lock()
	was := gr.topicID
	gr.mu.Unlock()
	if was == (intentlog.TopicID{}) {
		return false
	}
	now, err := gr.g.pinID(ctx, gr.topic)
	if err != nil || now == (intentlog.TopicID{}) || now == was {
		return false
	}
	gr.g.logger.Error("consumer group: the event topic was deleted and created again behind wail's back; the group's members end and join again "+
		"from the new topic's committed offsets: events of the deleted topic not yet acknowledged are gone, run `wail table reconcile` for the table",
		"table", gr.table, "group", gr.name, "topic", gr.topic)
	why := fmt.Errorf("%w: %s was deleted and created again (id %x, now %x): the group's offsets are the old topic's: join again",
		intentlog.ErrUnknownTopic, gr.topic, was[:], now[:])
	gr.mu.Lock()
	defer gr.mu.Unlock()
	for _, s := range slices.Collect(maps.Values(gr.sessions)) {
		gr.leave(s, why)
	}
	return true
}

// startsToFix returns the channel a join waits on until the group's
// entry holds starts (sharedLocal.fixed), nil when there are none to fix.
func (g *Groups) startsToFix(starts map[int32]int64) chan struct{} {
	if g.shared == nil || len(starts) == 0 {
		return nil
	}
	return make(chan struct{})
}

// expire ends the members whose acknowledgements are overdue.
func (g *Groups) expire() {
	defer g.wg.Done()
	t := time.NewTicker(max(g.lease/8, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.mu.Lock()
			grs := make([]*grp, 0, len(g.groups))
			for _, gr := range g.groups {
				grs = append(grs, gr)
			}
			g.mu.Unlock()
			for _, gr := range grs {
				if !gr.mu.TryLock() {
					// Busy (a commit in progress): Ack expires members
					// before it lets go of the lock, so a group whose
					// members acknowledge back to back, which is
					// seldom free at a tick, still expires the one
					// that stopped.
					continue
				}
				gr.expireLocked(now)
				gr.mu.Unlock()
			}
		}
	}
}

// expireLocked ends the members whose acknowledgements are overdue at
// now, and those whose stream took no message for longer than the lease
// (a client that stopped reading: without this, one stuck on a grant of
// idle partitions, to which no acknowledgement is ever due, held them for
// good). gr.mu is held.
func (gr *grp) expireLocked(now time.Time) {
	// A drain that ended (acknowledged, or it took the lease): its
	// partition moves (shared: the next sync releases it).
	if ch := gr.core.Handover(now); len(ch.Revoked) > 0 {
		gr.apply(ch)
		gr.g.kickSync()
	}
	if gr.g.noAckLease {
		return
	}
	for _, id := range gr.core.Expired(now) {
		if s := gr.sessions[id]; s != nil {
			gr.leave(s, fmt.Errorf("%w: member %q did not acknowledge delivered events within %s; "+
				"its partitions went to other members, which get its unacknowledged events again: join again",
				ErrLeaseExpired, id, gr.g.lease))
		}
	}
	for id, s := range gr.sessions {
		if s.stuck(now, gr.g.lease) {
			gr.leave(s, fmt.Errorf("%w: the stream of member %q took no message within %s (its client stopped reading); "+
				"its partitions went to other members: read the stream, and join again",
				ErrLeaseExpired, id, gr.g.lease))
		}
	}
}

// TableDropped ends the members of the groups of table, created at created
// (Table.Created; 0 unknown: any), with ErrTableDropped: their events are
// gone with its topic. Groups for which keep reports true are left (their
// owner stops them). Before, the members' readers failed on the deleted
// topic (the embedded log: the stream ended as the log failing, which
// clients retry) or waited on it for good (Kafka: the stream stayed open
// with nothing, and a member joining the table created again was refused
// until the old one was stopped by hand).
func (g *Groups) TableDropped(table string, created int64, keep func(group string) bool) {
	g.mu.Lock()
	var grs []*grp
	for k, gr := range g.groups {
		if k[0] == table && (keep == nil || !keep(k[1])) {
			grs = append(grs, gr)
		}
	}
	g.mu.Unlock()
	for _, gr := range grs {
		gr.mu.Lock()
		if gr.sameTable(Table{Name: table, Created: created}) {
			why := fmt.Errorf("%w: table %s was dropped, with its events and the group's positions: open a new consumer "+
				"once it is created again (a new table: its group %s starts anew)", ErrTableDropped, table, gr.name)
			for _, s := range gr.sessions {
				gr.leave(s, why)
			}
		}
		gr.mu.Unlock()
	}
}
