package resolver

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Group mode (Kafka): the resolver is a member of a consumer group. The
// group assigns partitions of the intent topics to the members
// (cooperative-sticky); this process runs a loop for each partition it is
// assigned and stops it, after draining, when the partition is revoked.
// Events and the offsets below them are published in one transaction
// (Group.Transact), so what a crashed or replaced member published either
// committed with its offsets or is invisible; a new owner starts from the
// stable committed offset (which waits for the old owner's open
// transaction) and reads back the versions already on the bus.

// ErrFenced: the group member was replaced (by a restart with the same
// instance id, or by the group after it stopped hearing from us); the
// resolver joins again.
var ErrFenced = errors.New("resolver: fenced out of the group")

// ErrAborted: a transaction aborted (a rebalance, a coordinator moving);
// nothing of it is visible and it may be retried.
var ErrAborted = errors.New("resolver: transaction aborted")

// errMembership wraps what ends a membership: a fenced member, or a
// transaction whose outcome is unknown.
var errMembership = errors.New("resolver: group membership failed")

// Group is a consumer-group membership that publishes atomically.
type Group interface {
	// AddTopics makes the group consume more intent topics.
	AddTopics(topics ...string)
	// Shards is how many transactions can run at once (one per shard).
	Shards() int
	// Transact appends recs (topic -> records) and commits offsets
	// (intent topic -> partition -> next offset) atomically, in a
	// transaction of the shard. It fails with ErrAborted when a retry may
	// succeed and with ErrFenced when the member must join again; other
	// errors leave the outcome unknown.
	Transact(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error
	// Close leaves the group.
	Close(ctx context.Context) error
}

// JoinFunc joins the resolver's group, consuming topics. assigned and
// revoked are called with intent topic -> partitions; revoked returns once
// the partitions' loops stopped.
type JoinFunc func(topics []string, assigned, revoked func(map[string][]int32)) (Group, error)

// txnRequest is one loop's batch for the next transaction.
type txnRequest struct {
	recs   map[string][]*intentlog.Record
	topic  string // intent topic
	part   int32
	offset int64
	epoch  int32           // the leader epoch of the intent before offset (-1: unknown)
	apart  bool            // runs in a transaction of its own
	done   <-chan struct{} // the loop is gone: drop the request
	reply  chan error
}

// at is the request's offset with its epoch.
func (rq *txnRequest) at() intentlog.EpochOffset {
	return intentlog.EpochOffset{Offset: rq.offset, Epoch: rq.epoch}
}

// maxTxnRequests bounds the loop batches of one transaction.
const maxTxnRequests = 256

// pump runs the transactions of one shard of this member's loops, one at a
// time, each carrying the batches that queued while the previous one ran.
// With a linger, a transaction starts no sooner than linger after the
// previous one started: a transaction costs the broker about the same
// whatever it carries (the partition adds, the offset commit, a marker
// per partition), so at moderate rates back-to-back transactions of a few
// events each cost more than the events.
type pump struct {
	group  Group
	shard  int
	linger time.Duration
	reqs   chan *txnRequest
	busy   sync.Mutex // held while a transaction runs
	txns   prometheus.Counter
}

func newPump(g Group, shard int, linger time.Duration, txns prometheus.Counter) *pump {
	return &pump{group: g, shard: shard, linger: linger, txns: txns, reqs: make(chan *txnRequest, maxTxnRequests)}
}

func (p *pump) run(ctx context.Context) {
	var last time.Time // start of the previous transaction
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var batch []*txnRequest
		select {
		case <-ctx.Done():
			return
		case rq := <-p.reqs:
			batch = append(batch, rq)
		}
		if wait := time.Until(last.Add(p.linger)); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
		linger:
			for len(batch) < maxTxnRequests {
				select {
				case <-ctx.Done():
					return
				case rq := <-p.reqs:
					batch = append(batch, rq)
				case <-timer.C:
					break linger
				}
			}
			if len(batch) == maxTxnRequests && !timer.Stop() {
				<-timer.C
			}
		}
	gather:
		for len(batch) < maxTxnRequests {
			select {
			case rq := <-p.reqs:
				batch = append(batch, rq)
			default:
				break gather
			}
		}
		last = time.Now()
		p.transact(ctx, batch)
	}
}

// transact runs one transaction for the batches whose loops still wait,
// and one for each that asked to be apart.
func (p *pump) transact(ctx context.Context, batch []*txnRequest) {
	p.busy.Lock()
	defer p.busy.Unlock()
	var merged []*txnRequest
	for _, rq := range batch {
		if rq.apart {
			p.transactLocked(ctx, []*txnRequest{rq})
		} else {
			merged = append(merged, rq)
		}
	}
	p.transactLocked(ctx, merged)
}

func (p *pump) transactLocked(ctx context.Context, batch []*txnRequest) {
	recs := map[string][]*intentlog.Record{}
	offsets := map[string]map[int32]intentlog.EpochOffset{}
	live := make([]*txnRequest, 0, len(batch))
	for _, rq := range batch {
		select {
		case <-rq.done:
			continue // revoked or stopped: not ours to publish any more
		default:
		}
		live = append(live, rq)
		for topic, rs := range rq.recs {
			recs[topic] = append(recs[topic], rs...)
		}
		if offsets[rq.topic] == nil {
			offsets[rq.topic] = map[int32]intentlog.EpochOffset{}
		}
		if cur, ok := offsets[rq.topic][rq.part]; !ok || rq.offset >= cur.Offset {
			offsets[rq.topic][rq.part] = rq.at()
		}
	}
	if len(live) == 0 {
		return
	}
	p.txns.Inc()
	err := transact(ctx, p.group, p.shard, recs, offsets)
	if len(live) > 1 && errors.Is(err, ErrAborted) {
		// One loop's records may have aborted it (too large for the
		// topic, refused by the broker): each runs alone, so that they
		// fail only their own loop.
		for _, rq := range live {
			select {
			case <-rq.done:
				continue
			default:
			}
			rq.reply <- transact(ctx, p.group, p.shard, rq.recs, map[string]map[int32]intentlog.EpochOffset{rq.topic: {rq.part: rq.at()}})
		}
		return
	}
	for _, rq := range live {
		rq.reply <- err
	}
}

// barrier returns once no transaction is running.
func (p *pump) barrier() {
	p.busy.Lock()
	//lint:ignore SA2001 waiting for the holder to let go is the point
	p.busy.Unlock()
}

// do queues a request and waits for its outcome or for done.
func (p *pump) do(ctx context.Context, rq *txnRequest) error {
	rq.reply = make(chan error, 1)
	select {
	case p.reqs <- rq:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-rq.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tp names a partition of an intent topic.
type tp struct {
	topic string
	part  int32
}

// member is this process's membership in the group, from join to leave.
type member struct {
	r    *Resolver
	ctx  context.Context // the partitions' parent: ends on shutdown
	errs chan error      // a partition that failed for good (fenced)

	mu     sync.Mutex
	pumps  []*pump                  // a partition's pump: pumpOf; set once, after Join
	tables map[string]catalog.Table // by intent topic
	parts  map[tp]*partitionRun
	// unknown holds assigned partitions that cannot start yet: of tables
	// this process has not loaded (another member created them), or
	// assigned before the pumps existed. They start when what they lack
	// arrives.
	unknown map[tp]bool
	// beyond holds the assigned partitions said not to be their table's
	// (at or past its partition count: added to the intent topic behind
	// wail's back), so that each is said once: it is the run's, shared by
	// its memberships (each join after a fenced member is assigned them
	// again). They stay parked in unknown: a table made again with more
	// partitions starts them.
	beyond *saidOnce
	closed bool // stopAll ran: assign nothing more
}

// saidOnce is the set of partitions beyond their table's count that were
// said, with the count they were said against (a table made again with
// another count is said again).
type saidOnce struct {
	mu   sync.Mutex
	said map[tp]int32
}

// first reports whether k, beyond a table of n partitions, was not said
// yet, and marks it said.
func (s *saidOnce) first(k tp, n int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if said, ok := s.said[k]; ok && said == n {
		return false
	}
	if s.said == nil {
		s.said = map[tp]int32{}
	}
	s.said[k] = n
	return true
}

type partitionRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// runGroup runs memberships until ctx ends, joining again after a member
// was fenced or failed.
func (r *Resolver) runGroup(ctx context.Context, tables []catalog.Table, more <-chan catalog.Table) error {
	backoff := r.cfg.BackoffMax
	known := append([]catalog.Table(nil), tables...)
	beyond := &saidOnce{}
	for {
		err := r.runMember(ctx, &known, more, beyond)
		if ctx.Err() != nil {
			return nil
		}
		r.cfg.Logger.Error("resolver group member stopped; joining again", "group", r.cfg.Group, "err", err, "retry_in", backoff)
		wait := time.After(backoff)
	backoff:
		for {
			select {
			case <-ctx.Done():
				return nil
			case t := <-more: // keep the catalog's sends from blocking
				known = append(known, t)
			case <-wait:
				break backoff
			}
		}
		backoff = nextBackoff(backoff)
	}
}

// runMember joins the group and runs the assigned partitions until ctx
// ends (then drains them, commits and leaves) or a partition fails.
func (r *Resolver) runMember(ctx context.Context, known *[]catalog.Table, more <-chan catalog.Table, beyond *saidOnce) error {
	m := &member{r: r, ctx: ctx, errs: make(chan error, 1), tables: map[string]catalog.Table{}, parts: map[tp]*partitionRun{}, unknown: map[tp]bool{}, beyond: beyond}
	var topics []string
	for _, t := range *known {
		m.tables[intent.Topic(t.Name)] = t
		topics = append(topics, intent.Topic(t.Name))
	}
	g, err := r.cfg.Join(topics, m.assigned, m.revoked)
	if err != nil {
		return fmt.Errorf("resolver: join %s: %w", r.cfg.Group, err)
	}
	pumpCtx, stopPumps := context.WithCancel(context.WithoutCancel(ctx))
	var pumps sync.WaitGroup
	var ps []*pump
	for shard := range max(g.Shards(), 1) {
		p := newPump(g, shard, r.cfg.TransactionLinger, r.cfg.Metrics.transactions)
		ps = append(ps, p)
		pumps.Go(func() { p.run(pumpCtx) })
	}
	m.setPumps(ps) // partitions assigned meanwhile start now
	defer func() {
		m.stopAll() // drains through the pumps, which still run
		stopPumps()
		pumps.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(cctx) // leaving is a courtesy; the session timeout does it too
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-m.errs:
			return err
		case t := <-more:
			*known = append(*known, t)
			m.addTable(t)
			g.AddTopics(intent.Topic(t.Name))
		}
	}
}

// assigned starts a loop for each new partition.
func (m *member) assigned(a map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for topic, ps := range a {
		for _, p := range ps {
			m.startLocked(tp{topic, p})
		}
	}
}

// addTable starts the assigned partitions of a table that just arrived.
func (m *member) addTable(t catalog.Table) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tables[intent.Topic(t.Name)] = t
	m.startParkedLocked(func(k tp) bool { return k.topic == intent.Topic(t.Name) })
}

// setPumps hands the member its pumps and starts the partitions that were
// assigned before it had them (the group may assign as soon as Join
// returns).
func (m *member) setPumps(ps []*pump) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pumps = ps
	m.startParkedLocked(func(tp) bool { return true })
}

// startParkedLocked tries again to start the parked partitions that match.
func (m *member) startParkedLocked(match func(tp) bool) {
	var parked []tp
	for k := range m.unknown {
		if match(k) {
			parked = append(parked, k)
		}
	}
	for _, k := range parked {
		delete(m.unknown, k)
		m.startLocked(k) // parks it again if it still lacks something
	}
}

func (m *member) startLocked(k tp) {
	t, ok := m.tables[k.topic]
	switch {
	case m.closed:
		return
	case ok && (k.part < 0 || k.part >= t.Partitions):
		// Not the table's: keys are placed by its count, so nothing is
		// written there, and starting it failed for ever ("no partition").
		m.unknown[k] = true
		if m.beyond.first(k, t.Partitions) {
			m.r.cfg.Logger.Warn("resolver: the group assigned an intent partition the table does not have (partitions were added to its "+
				"intent topic behind wail's back); it is left alone. The table must be drained and made again before any restart: "+
				"see the partitions/"+t.Name+" condition and docs/operations.md, Kafka",
				"table", t.Name, "partition", k.part, "table_partitions", t.Partitions)
		}
		return
	case !ok || len(m.pumps) == 0: // parked until the table or the pumps arrive
		m.unknown[k] = true
		return
	}
	if _, running := m.parts[k]; running {
		return
	}
	pctx, cancel := context.WithCancel(m.ctx)
	run := &partitionRun{cancel: cancel, done: make(chan struct{})}
	m.parts[k] = run
	pm := m.pumpOf(k)
	go func() {
		defer close(run.done)
		if err := m.r.runPartition(pctx, t, k.part, pm); err != nil {
			select {
			case m.errs <- err:
			default:
			}
		}
	}()
}

// revoked stops (draining and committing) the loops of the partitions and
// returns once they stopped and no transaction of theirs is running.
func (m *member) revoked(r map[string][]int32) {
	var stopped []*partitionRun
	m.mu.Lock()
	for topic, ps := range r {
		for _, p := range ps {
			delete(m.unknown, tp{topic, p})
			if run, ok := m.parts[tp{topic, p}]; ok {
				delete(m.parts, tp{topic, p})
				run.cancel()
				stopped = append(stopped, run)
			}
		}
	}
	pumps := m.pumps
	m.mu.Unlock()
	for _, run := range stopped {
		<-run.done
	}
	for _, p := range pumps {
		p.barrier()
	}
}

// pumpOf spreads partitions over the pumps.
func (m *member) pumpOf(k tp) *pump {
	h := fnv.New32a()
	h.Write([]byte(k.topic))
	return m.pumps[(h.Sum32()+uint32(k.part))%uint32(len(m.pumps))]
}

// stopAll stops every loop (draining) and waits for them.
func (m *member) stopAll() {
	m.mu.Lock()
	all := m.parts
	m.parts = map[tp]*partitionRun{}
	m.closed = true
	m.mu.Unlock()
	for _, run := range all {
		run.cancel()
	}
	for _, run := range all {
		<-run.done
	}
}
