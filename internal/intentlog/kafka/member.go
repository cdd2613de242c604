package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// ErrFenced: the member's transactional id or group membership was taken
// over (another process started with the same instance id, or the group
// moved on); the member must be closed and joined again.
var ErrFenced = errors.New("kafka: fenced")

// ErrTopicReplaced: a commit named a topic by the id it had when the
// member's partitions of it were assigned, and the broker knows no such
// topic any more: it was deleted behind wail's back, and maybe created
// again under its name. The offsets being committed are the old topic's:
// committed on the new one they would skip its records below them. It
// wraps ErrFenced: the member must be closed and joined again (the new
// member's partitions start from the new topic's committed offsets).
var ErrTopicReplaced = errors.New("kafka: a topic was deleted (and maybe created again) while the member held its partitions")

// errAborted: a transaction aborted for a reason that a retry in a new
// transaction can overcome (a rebalance, a coordinator moving).
var errAborted = errors.New("kafka: transaction aborted")

// IsAborted reports whether Transact failed with a transaction that was
// aborted and may simply be tried again.
func IsAborted(err error) bool { return errors.Is(err, errAborted) }

// MemberOptions configures a Member.
type MemberOptions struct {
	// Group is the consumer group: members of one group share the
	// partitions of Topics, and their offsets are committed under it.
	Group string
	// InstanceID names this member for its life and across restarts. Its
	// transactional ids are Group.InstanceID.N (see Producers), so a
	// member that restarts with the same id fences its crashed predecessor
	// and aborts its open transaction at once (instead of after
	// TransactionTimeout).
	// Two live members must not share one.
	InstanceID string
	// Topics are consumed by the group (more with AddTopics).
	Topics []string
	// OnAssigned is called with partitions newly assigned to this member:
	// the topics' live partitions, which include any added behind wail's
	// back once the client's metadata (refreshed every 5 minutes) shows
	// them, beyond the count the Log places keys by.
	OnAssigned func(map[string][]int32)
	// OnRevoked is called with partitions taken away (or lost); it must
	// return only once no Transact of theirs is running or will run.
	// Both are called from the group's goroutine, never concurrently.
	OnRevoked func(map[string][]int32)
	// TransactionTimeout bounds how long a transaction of a crashed member
	// that never comes back keeps its partitions' stable offset (and so
	// read_committed readers) from moving. Default 10s.
	TransactionTimeout time.Duration
	// SessionTimeout: how long the group waits for a silent member before
	// giving its partitions to others. Default 10s.
	SessionTimeout time.Duration
	// Producers is the number of transaction shards (default 1):
	// Transact calls of different shards run concurrently, each shard one
	// transaction at a time. A shard has two transactional producers and
	// takes them in turn, so that a transaction does not wait for the
	// coordinator to finish the one before it (its markers); shard s's
	// transactional ids are Group.InstanceID.2s and .2s+1.
	Producers int
}

// Member is a member of a consumer group with cooperative-sticky assignment
// whose work is published in Kafka transactions: records and the group's
// offsets commit together or not at all (exactly-once
// consume-transform-produce, KIP-447 fencing). It only manages membership
// and transactions: it fetches nothing (readers read the assigned
// partitions). Transact calls of one shard are serialized.
type Member struct {
	l         *Log
	cl        *kgo.Client // group membership and offset commits outside transactions
	group     string
	producers []*producer // two per shard
	shards    []*txnShard
	// producerOpts are the options of the client of a producer, but its
	// batch limit and ExtraClientOpts.
	producerOpts func(txnID string) []kgo.Opt
	// renewMu orders renew's replacing of a producer's client with Close:
	// once closing, no client is replaced, and one made meanwhile is
	// closed (it would run on, never closed).
	renewMu sync.Mutex
	closing bool

	// askMu: one transaction at a time asks offsetsAddImplicitly's
	// question (never held with metaMu across the request).
	askMu sync.Mutex

	metaMu sync.Mutex // guards what follows: cluster facts, asked once
	// implicitOffsets: the cluster adds the group's offsets to a
	// transaction with TxnOffsetCommit v5+ (KIP-890 part 2, transaction
	// version 2), so AddOffsetsToTxn is skipped.
	implicitOffsets *bool
	// askFailed: when offsetsAddImplicitly's question last failed; it is
	// not asked again until askRetry after.
	askFailed time.Time
	topicIDs  map[string][16]byte // TxnOffsetCommit v6+ names topics by id
	// forgotten: topics forgotten through the Log (Forget) since their
	// partitions were last assigned here: their offsets are refused
	// (topicID) until an assignment reads the id anew (pinIDs).
	forgotten map[string]bool
	// unpinned: topics whose id pinIDs could not read: their offsets are
	// refused (topicID) for the member's life, since an id read later
	// may be a topic's created again after the loops read their offsets.
	unpinned map[string]error

	// owners: the member id each held partition was assigned under;
	// offsets are committed only for partitions held under the member id
	// they are committed with.
	owners owners

	// produceBound bounds a transaction's produce and offset commit: half
	// the transaction timeout (see Transact).
	produceBound time.Duration

	// inFlight is set once a transaction ended with records still in
	// flight (errInFlight): every later Transact fails until the member
	// is closed, since the producer's retry of that batch would land in
	// its next transaction, committed with it.
	inFlight atomic.Bool

	// afterProduce, when set (tests), runs between a transaction's produce
	// and its offset commit: the crash test kills the process there.
	// afterOffsets runs between the offset commit and the id check.
	afterProduce, afterOffsets func()
	// askHook, when set (tests), runs before offsetsAddImplicitly's
	// ApiVersions request; an error it returns fails the question.
	askHook func(ctx context.Context) error
}

// producer is one transactional producer of a Member.
type producer struct {
	// bc is its client: replaced (between transactions, under its shard's
	// mu) by a new one with the same transactional id when a topic's
	// max.message.bytes changed (see batchClient).
	bc    atomic.Pointer[batchClient]
	txnID string
	// renewNext: a topic was forgotten (Forget): the next transaction
	// replaces the client first, rather than the client being purged of
	// the topic in place (see Member.forget).
	renewNext atomic.Bool
}

// client is the producer's client.
func (p *producer) client() *kgo.Client { return p.bc.Load().cl }

// txnShard runs the transactions of one shard, one at a time, on its two
// producers in turn. Kafka's coordinator finishes a committed transaction
// (writes its markers) after EndTxn has answered, and refuses the next
// transaction of the same producer until then (the client retries on
// CONCURRENT_TRANSACTIONS): back to back on one producer, each waits for
// the one before. The other producer's last transaction is two back and
// usually finished. Order holds: a transaction starts only once the one
// before it is committed (or aborted), and its records come after that
// one's on every partition.
type txnShard struct {
	mu        sync.Mutex // one transaction at a time
	pair      [2]*producer
	next      int   // which of pair runs the next transaction
	lastMilli int64 // newest record timestamp, over both producers
}

// Join creates a member and starts joining its group; assignments arrive
// through OnAssigned.
func (l *Log) Join(opts MemberOptions) (*Member, error) {
	if err := l.checkOpen(); err != nil {
		return nil, fmt.Errorf("kafka: join %s: %w", opts.Group, err)
	}
	if opts.Group == "" || opts.InstanceID == "" {
		return nil, errors.New("kafka: join: a group and an instance id are required")
	}
	if opts.TransactionTimeout <= 0 {
		opts.TransactionTimeout = 10 * time.Second
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	codec, err := l.opts.compression()
	if err != nil {
		return nil, fmt.Errorf("kafka: join %s: %w", opts.Group, err)
	}
	m := &Member{l: l, group: opts.Group, topicIDs: map[string][16]byte{}, forgotten: map[string]bool{}, unpinned: map[string]error{},
		produceBound: opts.TransactionTimeout / 2}
	m.producerOpts = func(txnID string) []kgo.Opt {
		return append(append([]kgo.Opt{}, l.common...),
			kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(opts.TransactionTimeout),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(codec),
			kgo.ProducerLinger(l.opts.Linger), // kgo's default (10 ms) would be on every transaction
			kgo.ConcurrentTransactionsBackoff(2*time.Millisecond),
			kgo.ProduceRequestTimeout(l.opts.RequestTimeout),
		)
	}
	for i := range 2 * max(opts.Producers, 1) {
		txnID := fmt.Sprintf("%s.%s.%d", opts.Group, opts.InstanceID, i)
		bc, err := l.newBatchClient(m.producerOpts(txnID), l.opts.ExtraClientOpts)
		if err != nil {
			m.closeProducers()
			return nil, fmt.Errorf("kafka: join %s: %w", opts.Group, err)
		}
		p := &producer{txnID: txnID}
		p.bc.Store(bc)
		m.producers = append(m.producers, p)
		if i%2 == 0 {
			m.shards = append(m.shards, &txnShard{pair: [2]*producer{p}})
		} else {
			m.shards[i/2].pair[1] = p
		}
	}
	// InitProducerID now, before any partition is assigned: it fences a
	// predecessor with each transactional id (a killed process, or this
	// process's previous membership) and aborts its open transaction,
	// which would otherwise hold the partitions' stable offsets until the
	// transaction timeout while the new owner waits for them. All at once:
	// each is a round trip to its coordinator, and aborting a predecessor's
	// transaction can take a while.
	if err := m.initProducers(l.opts.RequestTimeout); err != nil {
		m.closeProducers()
		return nil, fmt.Errorf("kafka: join %s: %w", opts.Group, err)
	}
	// Revoked: the loops drain and commit under the membership that still
	// holds r, so r is forgotten only after. Lost: forgotten first (the
	// group moved on; nothing of theirs may commit).
	revoked := func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
		if opts.OnRevoked != nil && len(r) > 0 {
			opts.OnRevoked(internalMap(l.names, r))
		}
		m.owners.revoke(r)
	}
	lost := func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
		m.owners.revoke(r)
		if opts.OnRevoked != nil && len(r) > 0 {
			opts.OnRevoked(internalMap(l.names, r))
		}
	}
	// Called after every sync, with what it added (even nothing): the
	// partitions held under an earlier member id start over (see owners).
	// They are forgotten before their loops drain (whose commits are then
	// refused: another member may have owned them meanwhile) and recorded
	// under the new id only once the loops stopped.
	assigned := func(ctx context.Context, cl *kgo.Client, a map[string][]int32) {
		m.pinIDs(ctx, a)
		member, _ := cl.GroupMetadata()
		stale := m.owners.stale(member)
		m.owners.revoke(stale)
		if opts.OnRevoked != nil && len(stale) > 0 {
			opts.OnRevoked(internalMap(l.names, stale))
		}
		a = merged(a, stale)
		m.owners.assign(member, a)
		if opts.OnAssigned != nil && len(a) > 0 {
			opts.OnAssigned(internalMap(l.names, a))
		}
	}
	clOpts := append(append([]kgo.Opt{}, l.common...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(l.names.externalAll(opts.Topics)...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsAssigned(assigned),
		kgo.OnPartitionsRevoked(revoked),
		kgo.OnPartitionsLost(lost), // commits will fail; the loops stop all the same
	)
	clOpts = append(clOpts, l.opts.ExtraClientOpts...)
	cl, err := kgo.NewClient(clOpts...)
	if err != nil {
		m.closeProducers()
		return nil, fmt.Errorf("kafka: join %s: %w", opts.Group, err)
	}
	// Membership only: the partitions are read by readers of their own,
	// from the offsets Committed returns.
	cl.PauseFetchTopics(l.names.externalAll(opts.Topics)...)
	m.cl = cl
	l.mu.Lock()
	l.members[m] = struct{}{}
	l.mu.Unlock()
	return m, nil
}

// initProducers initializes every producer's id concurrently, each within
// timeout; the first error (by producer) is returned.
func (m *Member) initProducers(timeout time.Duration) error {
	errs := make([]error, len(m.producers))
	var wg sync.WaitGroup
	for i, p := range m.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if _, _, err := p.client().ProducerID(ctx); err != nil {
				errs[i] = fmt.Errorf("init producer %s: %w", p.txnID, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// AddTopics makes the group consume more topics.
func (m *Member) AddTopics(topics ...string) {
	topics = m.l.names.externalAll(topics)
	m.cl.PauseFetchTopics(topics...)
	m.cl.AddConsumeTopics(topics...)
}

// Shards is the number of transaction shards (MemberOptions.Producers).
func (m *Member) Shards() int { return len(m.shards) }

// Transact publishes recs (topic -> records, each to Partition(key, n) of
// its topic) and commits the group's offsets (topic -> partition -> next
// offset) in one transaction of producer shard (mod Shards). With no records, it commits the offsets
// alone, outside a transaction. It fails with an error for which IsAborted
// holds when a retry can succeed, and with ErrFenced when the member must
// be joined again; on any error nothing of it is visible to read_committed
// readers.
func (m *Member) Transact(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	at := make(map[string]map[int32]intentlog.EpochOffset, len(offsets))
	for topic, ps := range offsets {
		at[topic] = make(map[int32]intentlog.EpochOffset, len(ps))
		for p, o := range ps {
			at[topic][p] = intentlog.EpochOffset{Offset: o, Epoch: -1}
		}
	}
	return m.TransactEpochs(ctx, shard, recs, at)
}

// TransactEpochs is Transact with the leader epoch of each offset, which
// the group commits with it (committed_leader_epoch, KIP-320): a reader
// started at both finds a log that diverged below the offset
// (intentlog.EpochLog).
func (m *Member) TransactEpochs(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]intentlog.EpochOffset) error {
	sh := m.shards[shard%len(m.shards)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recs, offsets = externalMap(m.l.names, recs), externalMap(m.l.names, offsets)
	var topics []string
	for topic, rs := range recs {
		if len(rs) > 0 {
			topics = append(topics, topic)
			// For the producers' batches: read if it never was,
			// refreshed in the background once a minute old.
			_, _ = m.l.maxMessageBytes(ctx, topic)
		}
	}
	for try := 0; ; try++ {
		sent := time.Now()
		used, err := m.transact(ctx, sh, recs, offsets, topics)
		if !IsAborted(err) || !errors.Is(err, kerr.MessageTooLarge) {
			return err
		}
		// Records refused as too large: a topic's max.message.bytes may
		// have changed (lowered: the broker refused a batch cut at the
		// old limit; raised: the client refused a record over it). Read
		// again; if the producer was told another limit, the
		// transaction goes again (once) with producers told the new
		// one. A record over the limit as it is fails so.
		for _, topic := range topics {
			m.l.rereadLimit(ctx, topic, sent)
		}
		if try > 0 || used == nil || !m.l.stale(used, topics...) {
			return fmt.Errorf("%w; %s", err, m.l.limitNote(ctx, topics...))
		}
	}
}

// transact is one try of TransactEpochs (Kafka's names; topics: those of
// recs), with the shard's mu held. It returns the producer client it
// used (nil: none).
func (m *Member) transact(ctx context.Context, sh *txnShard, recs map[string][]*intentlog.Record,
	offsets map[string]map[int32]intentlog.EpochOffset, topics []string) (*batchClient, error) {
	if m.inFlight.Load() {
		return nil, fmt.Errorf("kafka: transact: the member must be closed and joined again: %w", errInFlight)
	}
	krs, err := m.records(ctx, sh, recs)
	if err != nil {
		return nil, fmt.Errorf("kafka: transact: %w", err)
	}
	if len(krs) == 0 {
		return nil, m.commit(ctx, offsets)
	}
	// Checked again with the offsets (owners); here it saves producing
	// records that would be aborted.
	if member, _ := m.cl.GroupMetadata(); len(offsets) > 0 {
		if err := m.owners.check(member, offsets); err != nil {
			return nil, fmt.Errorf("kafka: transact: %w", err)
		}
	}
	p := sh.pair[sh.next]
	sh.next ^= 1
	// A transaction whose abort failed earlier is still open in the
	// client (BeginTransaction would refuse): abort it first. With none
	// open this returns at once.
	if err := p.client().EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort); err != nil {
		if err = m.classify(err); errors.Is(err, ErrFenced) {
			return nil, fmt.Errorf("kafka: transact: abort of an earlier transaction: %w", err)
		}
		return nil, fmt.Errorf("kafka: transact: abort of an earlier transaction: %w: %w", errAborted, err)
	}
	// No transaction is open: a client that cuts batches at a limit no
	// longer a topic's can be replaced.
	if p.renewNext.Load() || m.l.stale(p.bc.Load(), topics...) {
		if m.renew(p) {
			p.renewNext.Store(false)
		}
	}
	bc := p.bc.Load()
	cl := bc.cl
	if err := cl.BeginTransaction(); err != nil {
		return bc, fmt.Errorf("kafka: transact: %w", m.classify(err))
	}
	// Bounded: the producer retries a partition's retriable errors
	// (NOT_ENOUGH_REPLICAS while too few replicas are in sync) until the
	// context ends, and the pump's never does, so the shard's partitions
	// all stalled with nothing said; past the transaction timeout the
	// coordinator aborts the transaction anyway. Aborted here, it is
	// tried again, with an error that says why.
	pctx, cancel := context.WithTimeout(ctx, m.produceBound)
	defer cancel()
	// TxnOffsetCommit names topics by name before v6 (Kafka 4.3 too):
	// the group coordinator takes the offsets for whatever topic has the
	// name in its metadata then, a topic created again under it too. So
	// the ids are checked once the offsets are in the transaction, before
	// it commits, on the coordinator's metadata (found while the records
	// are produced): a topic replaced before the offsets went in shows
	// its new id there; one deleted after has the offsets staged for it
	// dropped with it (TestTxnCommitAfterTopicReplacedDuringProduce:
	// checked beside the produce, a topic replaced while the records were
	// in flight, up to half the transaction timeout, took the old
	// topic's offsets).
	coord := make(chan coordinator, 1)
	go func() { coord <- m.coordinator(pctx, offsets) }()
	perr := produce(pctx, cl, krs, m.produceBound)
	err = perr
	co := <-coord
	if err == nil {
		err = co.err
	}
	if err == nil && m.afterProduce != nil {
		m.afterProduce()
	}
	if err == nil {
		err = m.txnCommitOffsets(pctx, p, offsets)
	}
	if err == nil && m.afterOffsets != nil {
		m.afterOffsets()
	}
	if err == nil {
		err = m.sameIDs(pctx, co.node, offsets)
	}
	switch {
	case err == nil || ctx.Err() != nil || !errors.Is(pctx.Err(), context.DeadlineExceeded):
	case perr != nil:
		err = fmt.Errorf("not acknowledged within %s (half the transaction timeout): check the brokers and the partitions' "+
			"in-sync replicas (kafka-topics.sh --describe --under-min-isr-partitions): %w", m.produceBound, m.l.cutOffTxn(err, krs))
	default: // the records were acknowledged: the metadata or the group coordinator did not answer
		err = fmt.Errorf("records acknowledged, but not the offsets' check or commit within %s (half the transaction timeout): "+
			"check the brokers' metadata and the group coordinator (kafka-consumer-groups.sh --describe --group %s): %w", m.produceBound, m.group, err)
	}
	if err != nil {
		if errors.Is(err, errInFlight) {
			m.inFlight.Store(true) // see errInFlight below
		}
		aerr := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		switch {
		case aerr != nil:
			return bc, fmt.Errorf("kafka: transact: abort after %w: %w", err, m.classify(aerr))
		case errors.Is(err, ErrFenced): // ErrTopicReplaced, a topic unpinned
			return bc, fmt.Errorf("kafka: transact: aborted: %w", err)
		case errors.Is(err, errInFlight):
			// Not errAborted: the member must be joined again (new
			// producers, whose epochs fence this one's retries). Until
			// then it transacts no more: its shard's producers take
			// turns, and this one's next transaction would commit the
			// retried batch.
			return bc, fmt.Errorf("kafka: transact: aborted, but the member must be closed and joined again: %w", err)
		}
		return bc, fmt.Errorf("kafka: transact: %w: %w", errAborted, err)
	}
	// Not cancellable: a cancelled EndTxn leaves its outcome unknown.
	if err := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryCommit); err != nil {
		if errors.Is(err, kerr.OperationNotAttempted) || errors.Is(err, kerr.TransactionAbortable) {
			if aerr := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort); aerr != nil {
				return bc, fmt.Errorf("kafka: transact: %w", m.classify(aerr))
			}
			return bc, fmt.Errorf("kafka: transact: %w: %w", errAborted, err)
		}
		// The commit's outcome is unknown. The documented recovery, an
		// abort, re-initializes the producer (bumping its epoch, which
		// aborts the transaction if it is still open), so that the next
		// transaction does not find the client still in this one.
		err = m.classify(err)
		if !errors.Is(err, ErrFenced) {
			_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		}
		return bc, fmt.Errorf("kafka: transact: commit of unknown outcome: %w", err)
	}
	return bc, nil
}

// renew replaces p's client, which cuts batches at a limit no longer a
// topic's or knows a topic forgotten since, by a new one with the same
// transactional id (whose producer id is initialized, a new epoch, at its
// first transaction). The old one, with no transaction open, is closed.
// When the new one cannot be made, the old one stays (false).
func (m *Member) renew(p *producer) bool {
	bc, err := m.l.newBatchClient(m.producerOpts(p.txnID), m.l.opts.ExtraClientOpts)
	if err != nil {
		m.l.opts.Logger.Warn("kafka: cannot make a new transactional producer client; the old one produces on",
			"transactional_id", p.txnID, "err", err)
		return false
	}
	m.renewMu.Lock()
	if m.closing {
		m.renewMu.Unlock()
		bc.cl.Close()
		return false
	}
	old := p.bc.Swap(bc)
	m.renewMu.Unlock()
	m.l.opts.Logger.Info("kafka: max.message.bytes of a topic changed; record batches follow it (a new producer)",
		"transactional_id", p.txnID)
	old.cl.Close()
	return true
}

// records turns recs into kgo records placed by key and stamped with one
// timestamp, never below one handed out before.
func (m *Member) records(ctx context.Context, sh *txnShard, recs map[string][]*intentlog.Record) ([]*kgo.Record, error) {
	milli := max(time.Now().UnixMilli(), sh.lastMilli)
	sh.lastMilli = milli
	ts := time.UnixMilli(milli)
	var krs []*kgo.Record
	for topic, rs := range recs {
		if len(rs) == 0 {
			continue
		}
		n, err := m.l.partitionCount(ctx, topic)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			krs = append(krs, &kgo.Record{
				Topic: topic, Partition: r.Place(n), Key: r.Key, Value: r.Value,
				Headers: toKgoHeaders(r.Headers), Timestamp: ts,
			})
		}
	}
	return krs, nil
}

// produce sends krs in the open transaction and waits for all of them.
// Once ctx ended, the records still buffered are aborted (their
// transaction is aborted next); a request in flight is waited for at most
// grace more: the client may not fail a batch whose fate it does not know
// (NOT_ENOUGH_REPLICAS_AFTER_APPEND retried forever held it), and the
// abort that follows fences it.
func produce(ctx context.Context, cl *kgo.Client, krs []*kgo.Record, grace time.Duration) error {
	w := newWaiter(len(krs))
	for _, kr := range krs {
		cl.Produce(ctx, kr, w.promise)
	}
	select {
	case <-w.done:
		return w.firstErr()
	case <-ctx.Done():
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	_ = cl.AbortBufferedRecords(actx) // sets the client aborting, so that retried batches fail
	select {
	case <-w.done:
		return w.firstErr()
	case <-actx.Done():
		return fmt.Errorf("%w: %w", errInFlight, ctx.Err())
	}
}

// errInFlight: records of an aborted transaction were still in flight
// (the client retrying a batch it may have written): the producer must be
// closed, so that no retry of theirs can land later.
var errInFlight = errors.New("records still in flight after the transaction's end")

// classify marks errors after which the member cannot go on.
func (m *Member) classify(err error) error {
	switch {
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.InvalidTxnState):
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// Close leaves the group (its partitions go to the other members at once)
// and closes the member's client.
func (m *Member) Close(ctx context.Context) error {
	m.l.mu.Lock()
	delete(m.l.members, m)
	m.l.mu.Unlock()
	err := m.cl.LeaveGroupContext(ctx)
	m.cl.Close()
	m.renewMu.Lock()
	m.closing = true // no client is replaced from now on
	m.renewMu.Unlock()
	m.closeProducers()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("kafka: leave %s: %w", m.group, err)
	}
	return nil
}

func (m *Member) closeProducers() {
	for _, p := range m.producers {
		p.client().Close()
	}
}
