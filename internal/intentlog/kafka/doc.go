// Package kafka is an intentlog.Log on Apache Kafka (franz-go): wail's intent
// log and event bus at scale.
//
// # Mapping
//
//	intentlog            Kafka
//	topic, partitions    topic, partitions (CreateTopic: CreateTopics with
//	                     Options.ReplicationFactor; an existing topic with the
//	                     same count is fine, another count is
//	                     ErrPartitionMismatch)
//	TopicOptions         retention.ms (-1 for 0 = keep forever),
//	                     retention.bytes (-1 for 0), cleanup.policy: delete;
//	                     compact when Compact, "compact,delete" when Compact
//	                     and a retention is set (both are honoured);
//	                     max.message.bytes = Options.MaxMessageBytes; plus
//	                     Options.TopicConfigs
//	Append               one idempotent producer (acks=all), records sent to
//	                     partition intentlog.Partition(key, n) explicitly
//	                     (manual partitioner, n from metadata, cached);
//	                     returns once every record is acknowledged, with
//	                     Partition, Offset and Timestamp from the ack;
//	                     record batches (of the Log's producer and the
//	                     members') are at most the topic's
//	                     max.message.bytes when it was read (RecordLimit)
//	                     before the client first produced to the topic, else
//	                     MaxMessageBytes (limits.go: batchMaxBytes); a
//	                     limit changed since (read every minute, and on a
//	                     refusal as too large) replaces the producer and
//	                     the append or transaction goes again once
//	Record.Timestamp     CreateTime in milliseconds, set by Append from the
//	                     local clock, never decreasing within one Log
//	Record.Value nil     a null value: a compaction tombstone
//	Bounds               ListOffsets earliest / latest (the high watermark;
//	                     a reader reaches it once open transactions ended);
//	                     retriable errors (no leader) are retried for
//	                     Options.RequestTimeout, then ErrPartitionUnavailable
//	OffsetForTime        ListOffsets by timestamp; the end offset when none
//	Commit / Committed   OffsetCommit / OffsetFetch of a consumer group that
//	                     has no members (as kadm does); never-committed
//	                     partitions are absent. CommitEpochs /
//	                     CommittedEpochs (intentlog.EpochLog) carry each
//	                     offset's committed_leader_epoch. Committed sets
//	                     require_stable and waits out UNSTABLE_OFFSET_COMMIT:
//	                     it never returns an offset an open transaction is
//	                     about to move; after 15 s it aborts a hanging
//	                     transaction of the group's own producers there
//	Reader               a kgo client of its own consuming exactly one
//	                     partition from an exact offset, read_committed, with
//	                     no offset reset: falling below the log start is
//	                     ErrOffsetOutOfRange, never a silent skip; control
//	                     records are kept only to move Position past them.
//	                     It keeps where the records' leader epochs change
//	                     (EpochBefore); NewEpochReader starts it at an
//	                     offset with an epoch, validated by the client
//	                     first (KIP-320: OffsetForLeaderEpoch); an epoch
//	                     the leader has no record of (UNDEFINED_EPOCH_OFFSET,
//	                     which franz-go lets pass) is asked first by the
//	                     reader itself: a Truncation with From -1
//	                     (intentlog.ErrEpochUnknown). TopicID is the id
//	                     its fetched records carry (intentlog.TopicIDReader);
//	                     PinTopicID sets it before the first read, for a
//	                     reader started where another one stopped
//	EpochsBefore         (epochbefore.go) the leader epoch of the record
//	                     before an offset, fetched without isolation, for
//	                     offsets committed by no reader (group resets,
//	                     starts, snapshot ends)
//	Member (member.go,   a consumer-group member (cooperative-sticky) that
//	 txnoffsets.go)      fetches nothing and publishes with transactional
//	                     producers (transactional.id = group.instance.n,
//	                     two per shard, MemberOptions.Producers):
//	                     Transact = BeginTransaction, Produce, AddOffsetsToTxn,
//	                     TxnOffsetCommit (member id and generation: KIP-447;
//	                     topic ids for v6+), EndTxn; offsets alone go in an
//	                     OffsetCommit with the generation; produce and
//	                     offset commit are bounded by half the transaction
//	                     timeout, then aborted; TransactEpochs commits each
//	                     offset with its leader epoch. Offsets are committed
//	                     under the topic id read when their partitions were
//	                     assigned (unread then: refused, ErrFenced; checked
//	                     with the group coordinator's
//	                     fresh metadata: TxnOffsetCommit before v6 and
//	                     OffsetCommit before v10 name topics by name; in a
//	                     transaction once the offsets are staged, before
//	                     EndTxn, else before the commit): a topic deleted
//	                     and created again meanwhile fails the commit with
//	                     ErrTopicReplaced (ErrFenced: join again), never
//	                     carries the old topic's offsets to the new one;
//	                     so does a topic forgotten (Forget) until its
//	                     partitions are assigned again
//	FencePartition       (fence.go) a consumer group partition's committer:
//	                     a transactional id of its own, fenced by
//	                     InitProducerID; each commit is a transaction
//	                     (AddOffsetsToTxn, TxnOffsetCommit, EndTxn) on the
//	                     topic id of the fence, checked (as a member's)
//	                     once the offset is staged, before EndTxn;
//	                     FencePartitionOf pins the id a reader read
//	                     (intentlog.PinnedFencer): another id now is
//	                     ErrUnknownTopic, never the old offsets on the new
//	                     topic
//	Unhang (hanging.go)  DescribeProducers, ListTransactions and
//	                     DescribeTransactions find a transaction open on a
//	                     partition that its coordinator finished (its
//	                     markers lost); a read without isolation sorts the
//	                     records by their markers; WriteTxnMarkers aborts it
//
// Errors map to the intentlog sentinels: UNKNOWN_TOPIC_OR_PARTITION to
// ErrUnknownTopic, MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE (or a record
// over MaxMessageBytes, refused by the client) to ErrTooLarge,
// OFFSET_OUT_OF_RANGE to ErrOffsetOutOfRange, a log that diverged below
// what a reader read (kgo.ErrDataLoss: its leader-epoch check, KIP-320,
// after a leader change, or of the epoch it was started at) to an
// *intentlog.Truncation (ErrTruncated), a
// closed client to ErrClosed,
// *_AUTHORIZATION_FAILED and SASL_AUTHENTICATION_FAILED to ErrAccessDenied.
// The Kafka error stays in the chain. A reader's fetch reports its topic
// unknown once the metadata confirms it (asked again for 600 ms: a topic
// deleted elsewhere); other retriable fetch errors are waited through.
//
// # Guarantees
//
//   - Placement: a key lands on the same partition as with the embedded log
//     and with Kafka's default Java partitioner (murmur2), because Append
//     chooses the partition itself. The event bus relies on this: intent
//     partition p and event partition p hold the same keys.
//   - Durability: acks=all with idempotence; an acknowledged record is on
//     every in-sync replica (how many that is depends on the topic's
//     replication factor and min.insync.replicas, which Options sets at
//     creation only).
//   - Order: records of one partition keep the order of the Append calls of
//     one goroutine and, within a call, their order in the call; idempotence
//     makes retries neither reorder nor duplicate them.
//   - Readers see only acknowledged records of committed transactions
//     (read_committed), in offset order.
//
// # Not guaranteed
//
//   - An Append that returns an error (context ended, broker down, Close)
//     may still have written some or all of its records: once a request is
//     in flight the idempotent producer cannot take it back, so Append
//     returns at the caller's deadline but the records may land later.
//     Records not yet sent are failed when the caller's context ends; as
//     kgo fails a partition's buffered batch by the context of its first
//     record, a concurrent Append's records buffered behind it can fail too.
//     An Append cut off so says, when the metadata last showed it, why
//     its records were not acknowledged (unacked.go: no leader, fewer
//     in-sync replicas than min.insync.replicas; read in the background,
//     never waited for); the client keeps no trace of the errors it
//     retried.
//   - Offsets are contiguous only on topics without transactional writes:
//     Kafka's transaction markers take offsets too.
//   - Timestamps are the appender's clock: monotonic within one Log, not
//     across Logs (several proxies), so OffsetForTime may return an earlier
//     offset than the exact one, as the interface allows.
//   - Partition counts are cached for Append and Transact: a topic whose
//     partitions are added behind wail's back keeps getting the placement
//     of the count the Log first saw until it is reopened or forgets the
//     topic; fresh reads (Partitions, CreateTopic) answer the live count
//     but never replace the cached one, so keys never move partitions in a
//     running process (a restart refuses the table: ErrPartitionMismatch).
//
// Open does not contact the brokers; Ping does. Every Reader has its own
// client (one fetch session and its connections, and one fetch buffered
// ahead of Next); that is fine for a resolver's one reader per partition,
// but not for thousands of readers. A reader whose caller stopped asking
// (an event stream whose client reads nothing) lets its client go after
// Options.ReaderIdle and makes one again at the next Next.
package kafka
