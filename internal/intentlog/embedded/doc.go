// Package embedded is wail's default intent log: an intentlog.Log kept in
// segmented, CRC-framed files on local disk.
//
// # Layout
//
//	dir/#lock                             flock'd while a Log (or Repair) has dir open
//	dir/#space-probe.tmp                  written and removed while the disk is full
//	dir/<topic>/meta                      JSON: partition count and TopicOptions
//	dir/<topic>/<partition>/<base>.log    record batches; <base> is the segment's
//	                                      first offset, 20 digits
//	dir/<topic>/<partition>/<base>.idx    a sealed segment's sparse index
//	dir/<topic>/<partition>/#lost         JSON: offset ranges a repair removed
//	dir/<topic>/<partition>/#quarantine-<base>-<position>
//	                                      damaged bytes a repair moved out
//	dir/<topic>/offsets/<group>           a consumer group's committed offsets
//	dir/<topic>/offsets/#quarantine-<group>-<n>
//	                                      a damaged offsets file a repair replaced
//	                                      (a long <group> cut, then ~ and its CRC-32C)
//
// meta is {"version":1,"partitions":N} with, when set, "retention_ns",
// "retention_bytes", "compact" and "owner" (TopicOptions.Owner: what the
// topic was made for; wail writes "table:<name>:<created_at in Unix
// microseconds>" on a table's topics). A meta without "owner" (a topic
// made before it was recorded) reads as none; the first CreateTopic that
// names one records it, and one naming another fails with
// intentlog.ErrOwnedElsewhere (TopicOwners lists them).
//
// Topic and group names match [A-Za-z0-9._-]+ (not "." or "..", at most 249
// characters), so each is exactly one path element. meta and offset files
// are replaced atomically: write "#<name>.tmp", fsync, rename, fsync the
// directory. CreateTopic writes meta last; a topic directory without meta is
// an interrupted creation, ignored by Open and redone by CreateTopic.
//
// # Framing and index
//
// A .log file is a sequence of record batches, each framed by a magic byte,
// a length and a CRC-32C; batch.go documents the format byte by byte. The
// .idx file holds an entry (relative offset, file position, timestamp) for
// the first batch of the segment and then every IndexIntervalBytes of log;
// index.go documents it. The active segment's index lives in memory; it is
// written to the .idx once, when the segment is sealed (never fsync'd:
// Open verifies it and rebuilds it when wrong). Readers and OffsetForTime
// binary-search the index, check that the batch at the entry found is the
// one it names (Open checks only the last entry: a middle one may be stale
// after a power loss), rebuild the segment's index from its batches when
// it is not, and walk batches from there (reindex.go).
//
// # Group commit
//
// Every partition has one writer goroutine. Append encodes the records in
// the caller's goroutine (so the writer never touches caller memory), queues
// one request per partition it touches and waits for all of them (the
// requests' bodies are cut from one buffer, which goes back to a pool only
// once every request was answered with success: by then each writer copied
// its body into its batch). The writer
// takes everything queued (up to MaxBatchBytes), writes it as ONE batch,
// fsyncs once, then publishes it: it advances the partition's end offset,
// appends the index entry if one is due, closes the partition's notify
// channel (replacing it with a new one) to wake waiting readers, and wakes
// the appenders with their offsets and the batch timestamp. N concurrent
// appenders thus share one write and one fsync. With
// Options.SyncFilesystem, the writers of all partitions of all topics share
// the sync too: each hands its written batch to the log's syncer, which
// makes every batch queued durable with one syncfs(2) per round (sync.go).
// Timestamps come from
// Options.Now, clamped so they never decrease within the log: a batch is
// stamped no earlier than the newest timestamp of any partition (found
// again at Open), so a record appended after another was read is stamped
// no earlier, whatever its topic, also after the clock stepped back (the
// resolver scans the event bus and the dead-letter topic from an intent's
// timestamp: TestClockGoesBackAcrossTopics). Before a
// batch that would take the active segment past SegmentBytes, the writer
// rolls a new segment (and fsyncs the directory) and then applies retention.
//
// # Recovery
//
// Open makes its directory durable in its parent, takes the directory lock,
// then for every partition: sealed segments (all but the last) are trusted
// but their index is verified (monotonic, in bounds, its last entry
// matching the batch it points at, and a framing walk from there reaching
// the end of the file); a bad index is rebuilt from a framing walk. The
// active (last) segment is read completely, checking every batch's CRC,
// records and offsets, and its index is rebuilt in memory. Once every
// partition is recovered, each one's active segment and directory are
// fsync'd, 16 partitions at a time (syncRecovered): a process killed after
// a write but before its fsync (or whose fsync and truncate failed) leaves
// bytes in the page cache that read back as valid, and one killed in a
// roll leaves a segment whose name is not durable. Appends go after them
// and a roll seals them, so a power loss would take them from under
// records acknowledged later (TestOpenMakesWhatItKeepsDurable); a failed
// fsync fails Open.
//
// Corruption is not a torn tail. The writer writes one batch and fsyncs it
// before it writes the next, so a crash can only tear the last batch: when
// the active segment's first bad batch has no valid batch after it, it is a
// torn tail, never acknowledged, and the file is truncated there (logged
// with the position, bytes dropped and offset). When a valid batch follows
// the bad one, or the bad one is itself whole and valid and only its
// offsets are wrong (a torn write cannot leave a whole batch), the bytes
// were damaged at rest. A valid batch inside the bad one does not count:
// a value holds any bytes a client sent, an encoded batch among them. A
// torn write keeps a prefix of its batch, header first, so the bad batch's
// records are walked as the writer encodes them (every one starts with a
// 0 byte, its timestamp delta): when they are consistent up to the end its
// length field declares, or (with the header as the writer wrote it: a
// torn write keeps it whole) up to the end of the data, a batch is looked
// for from that end on; when a record ends early with a batch's magic byte
// after it, the header was damaged (the CRC does not cover the length
// field) and the next batch starts there; anything else is damage, and any
// later batch counts. A last batch whose CRC matches its bytes up to the
// end of the file is whole, damaged only in its magic byte or length
// field, and is refused, not truncated.
// Open refuses to start with an
// error wrapping intentlog.ErrCorrupt that names the file, the position,
// the offset and the fix (RepairHint). So does framing damage found in a
// sealed segment, and a sealed segment that ends before the next one starts
// (a lost file or lost bytes), unless the gap is listed in the partition's
// #lost file. One that ends past the next one's start (they overlap) is
// refused whatever #lost lists, with what to do instead of RepairHint.
// So are segments missing at the end of a partition (deleted while wail was
// stopped, or lost by the disk), found when the last .log has an .idx that
// verifies against it, or an .idx is left above it (any, when no .log is):
// a roll writes the .idx of the segment it seals once the new segment's name
// is durable, so a later segment existed, and opening would give its
// offsets to new records. So is a partition without a segment file, or
// without its directory: CreateTopic makes each partition's directory and
// first segment durable before it writes meta
// (TestOpenRefusesMissingOnlySegment). The error says what to run to
// accept the loss: remove the .idx files it names, create an empty first
// segment when none is left (TestOpenRefusesMissingLastSegment). The .idx is not
// fsync'd: after a power loss that took it too, the loss goes unseen but
// for groups whose committed offsets are past the end (below). An .idx
// of the last segment that does not verify is stale and removed. CRC
// damage inside a sealed segment (whose batches Open does
// not read) is found by readers, whose error wraps ErrCorrupt and names
// file, position and RepairHint; it shows in Health as ErrReadCorrupt
// until that position reads fine again (readhealth.go,
// TestCorruptReadInHealth, TestCorruptReadProbe). Readers see only
// published batches, so a torn append is never taken for it
// (TestTornAppendIsNotCorruptRead).
//
// Repair (`wail log repair DATA_DIR`) checks every batch, moves each damaged
// region to a #quarantine file, gives the valid batches after it a segment
// file of their own, and records the lost offsets in #lost (also offsets
// missing between two whole batches, which lose no byte). Readers skip a
// gap between segments: Next returns no records and a moved Position.
//
// A consumer group's offsets file whose checksum fails, or that holds
// entries no commit writes, fails Open with ErrCorrupt too. Repair copies
// it to a quarantine file and replaces it with one that starts the group
// at each partition's first retained offset: the lowest position it can
// have had, so it reads again what it had read and skips nothing
// (offsetsrepair.go says why nothing better is exact).
//
// Then Open compares every consumer group's committed offsets with the
// recovered ends: an offset beyond the end (the log lost its tail after the
// group read it) is lowered to the end, durably, with an error log line and
// an entry in Warnings, so that records appended later, which reuse those
// offsets, are not skipped. A commit beyond the end while the log is open
// is refused (ErrOffsetOutOfRange, nothing committed): a group that reads
// commits no more than its readers returned, which were durable, so no
// crash leaves its offset past the recovered end
// (TestCommitNeverBeyondRecoveredEnd); such an offset can only be another
// topic's of the name, deleted since, or a caller's bug
// (TestCommitBeyondEnd).
//
// # Reading
//
// A Reader finds its segment and position under the partition lock, takes a
// reference on the segment and a snapshot of its durable size and index,
// then reads with ReadAt without any lock, so it runs concurrently with the
// writer and only ever sees fsync'd bytes. At the end of the partition it
// blocks on the notify channel (and its context, Reader.Close and
// Log.Close). Retention removes segments from the list at once but deletes
// a segment's file only when its last reader lets go; a reader whose
// position fell below the new start gets ErrOffsetOutOfRange. A read decodes
// whole batches straight into the slice it returns (sized from the first
// batch for the bytes left); keys, values and header values alias the
// chunk it read, never reused, and the records of a batch share one headers
// slab, each cut to its own capacity, so that a caller appending to one
// record's slices never writes into another's.
//
// # Retention
//
// Per topic, whole non-active segments are deleted oldest first while their
// newest timestamp is older than TopicOptions.Retention, or while the
// partition is larger than TopicOptions.RetentionBytes. It runs at every roll
// and every Options.RetentionCheckInterval. Compaction is not supported.
//
// # Locks
//
// Lock order (a goroutine holding one may only take those below it):
//
//	Log.createMu      serializes CreateTopic and DeleteTopic (held during
//	                  their file I/O); Close takes it to wait for them
//	Log.mu            topics map and closed flag (RWMutex)
//	topic.offIO       offsets files of one topic: held shared while one is
//	                  written, exclusively by DeleteTopic
//	topic.offMu       committed offsets of one topic (never held during
//	                  file I/O, but for the first read of a group's file)
//	partition.qmu     append queue, closing and broken flags
//	partition.mu      segment list, bounds, durable sizes, index slices,
//	                  segment reference counts, notify channel
//
// In practice only Log.createMu -> Log.mu is ever nested; partition.qmu and
// partition.mu are never held during file I/O. The active segment's file
// position belongs to the writer goroutine alone. fileCache.mu is a leaf
// (taken with none of the above held). No goroutine holds two segment files
// at once, so waiting for the file budget cannot deadlock.
//
// # Filesystem seam
//
// Every file operation goes through Options.FS (package vfs): the operating
// system by default; in tests an ErrorFS that injects ENOSPC or EIO at
// chosen operations, or a MemFS that simulates a power loss by dropping
// every byte and directory entry not fsync'd (TestCrashDropsUnsynced).
//
// # Storage errors
//
// A full disk (ENOSPC, EDQUOT) on a batch write or a segment roll fails the
// batch's Appends with an error wrapping intentlog.ErrNoSpace; the part of
// the batch that reached the file is truncated away (readers never saw it:
// they stop at the published size) and the end offset does not move. The
// partition keeps trying: the next Append writes at the same position.
// After a failed roll the next batch rolls too, even one that would fit:
// the segment file the roll created is removed, but that remove may fail
// or not be durable, and a batch in the old segment would take the offset
// the file is named after (TestFailedRollLeavesNoOverlap). A file left
// that the roll cannot create again breaks the partition.
// A probe file written every SpaceProbeInterval clears the condition once
// space returns, so that Health recovers even when nobody appends (a
// partition that failed again while the probe ran stays full until the
// next probe).
//
// Any failed fsync of a segment (ENOSPC included), or a failed syncfs
// round (which breaks every partition of the round, and then every
// partition at its next append: sync.go), any other write error,
// a failed truncate, and an active segment that cannot be opened again
// (the file cache closed it; an I/O error, the file deleted under the log;
// too many open files only fails that append) break the partition: its Appends fail with
// ErrStorage until the log is reopened (wail restarts). After a failed
// fsync the kernel may have dropped the dirty pages and forgotten the
// error, so the file cannot be trusted in this process; PostgreSQL and
// Kafka halt on it too. Only the batch being written is affected: every
// acknowledged one was fsync'd before. Concurrent commits of one group's
// offsets are merged into one write of its file, made without holding the
// lock Committed takes (offsets.go). A failed commit of offsets or
// creation of a topic returns ErrNoSpace or ErrStorage and changes nothing
// (the files are replaced atomically). A failed deletion of a topic returns
// ErrStorage too; the topic is gone from the Log already, and a retry
// removes what is left (TestDeleteTopicIOErrorIsStorage).
//
// A failed read (a Reader's, OffsetForTime's, the first Committed of a
// group, or Open's of any file) returns an error wrapping ErrStorage and
// the cause, never ErrCorrupt: a failing disk is told from damaged bytes.
// It changes nothing, so it breaks no partition: a read tried again reads
// again (TestReadIOErrorIsStorage, TestOpenIOErrorIsStorage). A failed read
// of a partition still shows in Health as ErrReadFailing, until a read
// gets past the failed position again, or the read probe (every
// SpaceProbeInterval) reads it, or retention removes its segment
// (readhealth.go, TestReadFailureInHealth, TestReadFailureProbe). So does
// a failed read of a group's offsets file (not cached, so the next
// Committed reads again), naming topic, group and file, until a read of it
// works, a commit replaces it or the probe reads it (offsetshealth.go,
// TestCommittedFailureInHealth).
//
// Health returns nil, or the worst condition (ErrStorage before
// ErrNoSpace before ErrReadCorrupt before ErrReadFailing) with the number of partitions affected
// and the first one; Options.OnHealth is called whenever it changes.
//
// # Descriptors
//
// Segment files are opened when read or written and kept in an LRU of at
// most Options.MaxOpenFiles (default: a quarter of the soft RLIMIT_NOFILE,
// between 64 and 4096); when all are in use the next reader or writer
// waits. Nothing else holds a descriptor for long: .idx, meta and offsets
// files are opened, written and closed. A segment retention deletes while
// a reader uses it is deleted when that reader lets go, unless its
// partition closed meanwhile (Close, DeleteTopic): then its path may name
// a segment of the topic created again, or of the log opened again, and
// it is left to the topic's removal or the next Open's retention. Retention deletes
// files oldest first, each durably (directory fsync) before the next, and
// a younger segment waits for an older one still being read or that could
// not be deleted: a crash never leaves a gap between retained segments,
// which Open would refuse (TestRetentionCrashLeavesNoGap).
//
// # Goroutines
//
// One writer per partition, one retention ticker and one space prober, all
// in one WaitGroup; with SyncFilesystem, one syncer, stopped after them.
// Close marks the log closed and wakes blocked readers, waits for a topic
// creation or deletion under way (no file is touched after Close returns),
// stops the writers (each finishes its current batch, then fails what is
// still queued with ErrClosed), waits for them and closes every file.
package embedded
