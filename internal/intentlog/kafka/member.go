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
	"github.com/twmb/franz-go/pkg/kmsg"

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

// txnCommitOffsets adds the group's offsets to the open transaction, fenced
// by the member's generation: a member that was replaced cannot commit.
func (m *Member) txnCommitOffsets(ctx context.Context, p *producer, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	cl := p.client()
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	if !m.offsetsAddImplicitly(ctx) {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = p.txnID, pid, epoch, m.group
		addResp, err := add.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(addResp.ErrorCode); err != nil {
			return err
		}
	}
	member, gen := m.cl.GroupMetadata()
	if err := m.owners.check(member, offsets); err != nil {
		return err
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = p.txnID, m.group, pid, epoch
	req.Generation, req.MemberID = gen, member
	for topic, parts := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		if rt.TopicID, err = m.topicID(ctx, topic); err != nil {
			return err
		}
		for p, o := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, o.Offset, max(o.Epoch, -1)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				name := t.Topic
				for _, rt := range req.Topics {
					if name == "" && rt.TopicID == t.TopicID {
						name = rt.Topic
					}
				}
				return fmt.Errorf("commit %s/%d: %w", name, p.Partition, replaced(err))
			}
		}
	}
	return nil
}

// replaced marks a commit refused for its topic id (UNKNOWN_TOPIC_ID) or
// name (UNKNOWN_TOPIC_OR_PARTITION) with ErrTopicReplaced and ErrFenced.
// The member keeps the id (see topicID): its partitions' offsets are the
// old topic's, and every commit of them is refused so until the member is
// joined again. (Reading the id again here committed them on a topic
// created again under the name: TestCommitNotCarriedToTopicCreatedAgain.)
func replaced(err error) error {
	if !errors.Is(err, kerr.UnknownTopicID) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	return fmt.Errorf("%w: %w: %w", ErrFenced, ErrTopicReplaced, err)
}

// offsetsAddImplicitly tells whether the cluster finalized transaction
// version 2 and takes TxnOffsetCommit v5+ (as franz-go decides for its own
// transactions): then TxnOffsetCommit adds the offsets to the transaction
// itself, one round trip fewer. When in doubt: no (AddOffsetsToTxn, right
// on every cluster). The question (ApiVersions) is asked by one
// transaction at a time, within askBound of its time, and without metaMu,
// which the other transactions' topic id checks take
// (TestOffsetsQuestionHoldsNoLock); while it is asked, and for askRetry
// after it failed, the others answer no at once
// (TestOffsetsQuestionNotAskedAtEveryTransaction). Once answered, it is
// asked no more.
func (m *Member) offsetsAddImplicitly(ctx context.Context) bool {
	known := func() (answer *bool, wait bool) {
		m.metaMu.Lock()
		defer m.metaMu.Unlock()
		return m.implicitOffsets, !m.askFailed.IsZero() && time.Since(m.askFailed) < askRetry
	}
	if answer, wait := known(); answer != nil || wait {
		return answer != nil && *answer
	}
	if !m.askMu.TryLock() {
		return false // another transaction is asking
	}
	defer m.askMu.Unlock()
	if answer, wait := known(); answer != nil || wait { // answered meanwhile
		return answer != nil && *answer
	}
	actx, cancel := context.WithTimeout(ctx, m.produceBound/askBound)
	defer cancel()
	ok, err := m.askImplicit(actx)
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	switch {
	case err == nil:
		m.implicitOffsets = &ok
	case ctx.Err() == nil:
		// (A question cut by the caller's end says nothing of the
		// cluster: asked again by the next transaction.)
		m.askFailed = time.Now()
	}
	return ok
}

// askImplicit asks the cluster offsetsAddImplicitly's question.
func (m *Member) askImplicit(ctx context.Context) (bool, error) {
	if m.askHook != nil {
		if err := m.askHook(ctx); err != nil {
			return false, err
		}
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wail", "1"
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return false, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, err
	}
	ok := false
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
			ok = true
		}
	}
	txnOffsetCommitV5 := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.TxnOffsetCommit) && k.MaxVersion >= 5 {
			txnOffsetCommitV5 = true
		}
	}
	return ok && txnOffsetCommitV5, nil
}

const (
	// askRetry is how long after a failed question offsetsAddImplicitly
	// asks it again.
	askRetry = 10 * time.Second
	// askBound: the question takes at most this fraction of the
	// transaction's produce bound (half the transaction timeout), so
	// that its transaction, answered no, still commits in time.
	askBound = 4
)

// coordinator is the group coordinator's node id, or why it is not known.
type coordinator struct {
	node int32
	err  error
}

// coordinator finds the group's coordinator, whose metadata sameIDs asks
// (node -1 when there are no offsets to check).
func (m *Member) coordinator(ctx context.Context, offsets map[string]map[int32]intentlog.EpochOffset) coordinator {
	if len(offsets) == 0 {
		return coordinator{node: -1}
	}
	node, err := m.l.groupCoordinator(ctx, m.group)
	if err != nil {
		return coordinator{node: -1, err: fmt.Errorf("topic ids: %w", err)}
	}
	return coordinator{node: node}
}

// sameIDs fails with ErrTopicReplaced when a topic of offsets has, by
// fresh metadata of the broker node (the group's coordinator; -1: any),
// another id than the member's. In a transaction it runs once the
// offsets are in it (by name: TxnOffsetCommit before v6), before it
// commits: the coordinator took them for the topic its metadata had
// then, which it shows now or a newer one. A topic deleted after that
// has the offsets staged for it dropped with it (Kafka 4.3:
// TestFencedCommitTopicReplaced), and one created again before it shows
// its new id here.
func (m *Member) sameIDs(ctx context.Context, node int32, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	topics := make([]string, 0, len(offsets))
	for topic := range offsets {
		topics = append(topics, topic)
	}
	tds, err := m.l.freshTopicsAt(ctx, node, topics...)
	if err != nil {
		return fmt.Errorf("topic ids: %w", err)
	}
	for _, topic := range topics {
		id, err := m.topicID(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := tds[topic]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			// Deleted, or a broker behind: aborted and tried again,
			// until the metadata shows the topic (another id: replaced)
			// or the reader finds it gone.
			return fmt.Errorf("metadata of %s: %w", topic, kerr.UnknownTopicOrPartition)
		case td.Err != nil:
			return fmt.Errorf("metadata of %s: %w", topic, td.Err)
		case td.ID != id:
			return fmt.Errorf("%s (id %x, now %x): %w", topic, id[:], td.ID[:], replaced(kerr.UnknownTopicID))
		}
	}
	return nil
}

// pinIDs reads the ids of the topics of newly assigned partitions that
// the member has none of yet, before their loops start: the offsets of a
// partition are committed under the id its topic had then, never under
// one read later (a topic deleted and created again meanwhile: its loop's
// reader reads the old one). A topic whose id cannot be read then is
// refused for the member's life (unpinned; TestUnpinnedTopicNotReadAtCommit:
// its first commit read the id, of a topic created again since the loops
// read their offsets). A topic forgotten through the Log (Forget) is read
// anew: its partitions assigned again are those of a topic created
// again, or of the same one.
func (m *Member) pinIDs(ctx context.Context, a map[string][]int32) {
	if len(a) == 0 {
		return
	}
	var read []string
	m.metaMu.Lock()
	for topic := range a {
		if m.forgotten[topic] {
			delete(m.forgotten, topic)
			delete(m.topicIDs, topic)
		}
		if _, ok := m.topicIDs[topic]; !ok && m.unpinned[topic] == nil {
			read = append(read, topic)
		}
	}
	m.metaMu.Unlock()
	// Not under metaMu: the transactions of the partitions held before
	// check their ids under it meanwhile (TestPinIDsHoldsNoLockAcrossItsRead).
	// Assignments come one at a time; a Forget meanwhile leaves the topic
	// forgotten, which topicID checks first.
	ctx, cancel := context.WithTimeout(ctx, m.l.opts.RequestTimeout)
	defer cancel()
	for _, topic := range read {
		id, err := m.pinnedIDRetried(ctx, topic)
		m.metaMu.Lock()
		if err != nil {
			m.unpinned[topic] = err
		} else {
			m.topicIDs[topic] = id
		}
		m.metaMu.Unlock()
		if err != nil {
			m.l.opts.Logger.Warn("kafka: the topic id of newly assigned partitions could not be read; "+
				"their offsets are refused until the member joins again", "group", m.group, "topic", topic, "err", err)
		}
	}
}

// pinnedIDRetried is pinnedID tried again a few times with backoff (at
// most pinTries in all, within ctx): before the partitions' loops start
// (and read their offsets), an id read late is as good as one read at
// once, and a topic whose id could not be read is refused for the
// member's life, which the resolver meets by joining its whole group
// again (TestPinIDsRetriesATransientFailure). A few, not until ctx ends:
// the assignment waits for them.
func (m *Member) pinnedIDRetried(ctx context.Context, topic string) ([16]byte, error) {
	id, err := m.l.pinnedID(ctx, topic)
	wait := 50 * time.Millisecond
	for try := 1; err != nil && try < pinTries; try++ {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return id, err
		case <-t.C:
		}
		wait *= 2
		id, err = m.l.pinnedID(ctx, topic)
	}
	return id, err
}

// pinTries is how many times pinIDs reads a topic's id before it gives up
// (waiting 50 ms, 100 ms, 200 ms between).
const pinTries = 4

// pinnedID reads topic's id for a member's assignment (pinIDs).
func (l *Log) pinnedID(ctx context.Context, topic string) ([16]byte, error) {
	if l.pinHook != nil {
		if err := l.pinHook(topic); err != nil {
			return [16]byte{}, err
		}
	}
	td, err := l.freshTopics(ctx, topic)
	if err != nil {
		return [16]byte{}, mapErr(err)
	}
	d, ok := td[topic]
	switch {
	case !ok:
		return [16]byte{}, fmt.Errorf("metadata of %s: %w", topic, intentlog.ErrUnknownTopic)
	case d.Err != nil:
		return [16]byte{}, fmt.Errorf("metadata of %s: %w", topic, mapErr(d.Err))
	}
	return d.ID, nil
}

// topicID returns the id a topic's partitions were assigned under
// (pinIDs), kept for the member's life (see replaced). A topic forgotten
// through the Log (dropped by wail: Forget) since its partitions were
// assigned fails with ErrTopicReplaced until they are assigned again
// (pinIDs): the offsets of a partition assigned before are the dropped
// topic's, and reading the id here named a topic created again since
// (TestForgottenTopicIDNotReadAgain: a Forget between a transaction's
// check, sameIDs, and its TxnOffsetCommit). A topic whose id pinIDs could
// not read, or that was never assigned here, fails with ErrFenced: an id
// read now may be a topic's created again since the offsets were read
// (TestUnpinnedTopicNotReadAtCommit).
func (m *Member) topicID(_ context.Context, topic string) ([16]byte, error) {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	if m.forgotten[topic] {
		return [16]byte{}, fmt.Errorf("%s was forgotten (its table dropped) since its partitions were assigned: %w", topic, replaced(kerr.UnknownTopicID))
	}
	if id, ok := m.topicIDs[topic]; ok {
		return id, nil
	}
	if err := m.unpinned[topic]; err != nil {
		return [16]byte{}, fmt.Errorf("%w: the id of topic %s could not be read when its partitions were assigned (%w); "+
			"its offsets are committed only under the id read then: the member must join again", ErrFenced, topic, err)
	}
	return [16]byte{}, fmt.Errorf("%w: topic %s has no partitions assigned to the member", ErrFenced, topic)
}

// commit commits offsets outside a transaction, under the member's
// generation. Not kgo's CommitOffsets: it waits out a join and sync, then
// commits under the new member id and generation, which owners must check
// first.
func (m *Member) commit(ctx context.Context, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	member, gen := m.cl.GroupMetadata()
	if err := m.owners.check(member, offsets); err != nil {
		return fmt.Errorf("kafka: commit offsets: %w", err)
	}
	// OffsetCommit names topics by id from v10 on only (the broker then
	// refuses an old id itself); before, by name, as TxnOffsetCommit,
	// and, not in a transaction, checked before it only: a topic
	// replaced between the check and the commit (one round trip) is
	// not seen.
	co := m.coordinator(ctx, offsets)
	err := co.err
	if err == nil {
		err = m.sameIDs(ctx, co.node, offsets)
	}
	if err != nil {
		if errors.Is(err, ErrFenced) { // ErrTopicReplaced, a topic unpinned
			return fmt.Errorf("kafka: commit offsets: %w", err)
		}
		return fmt.Errorf("kafka: commit offsets: %w: %w", errAborted, err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = m.group, gen, member
	for topic, parts := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		id, err := m.topicID(ctx, topic)
		if err != nil {
			return fmt.Errorf("kafka: commit offsets: %w", err) // ErrFenced
		}
		rt.TopicID = id
		for p, o := range parts {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, o.Offset, max(o.Epoch, -1)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return fmt.Errorf("kafka: commit offsets: %w: %w", errAborted, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if err := replaced(err); errors.Is(err, ErrTopicReplaced) {
					return fmt.Errorf("kafka: commit offsets: commit %s/%d: %w", topicOf(req, t.Topic, t.TopicID), p.Partition, err)
				}
				return fmt.Errorf("kafka: commit offsets: %w: commit %s/%d: %w", errAborted, topicOf(req, t.Topic, t.TopicID), p.Partition, err)
			}
		}
	}
	return nil
}

// topicOf names a topic of a response, which names it by id from v10 on.
func topicOf(req *kmsg.OffsetCommitRequest, name string, id [16]byte) string {
	for _, t := range req.Topics {
		if name == "" && t.TopicID == id {
			return t.Topic
		}
	}
	return name
}

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
