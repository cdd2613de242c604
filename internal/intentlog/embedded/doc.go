// Package embedded is wail's default intent log: an intentlog.Log kept in
// segmented, CRC-framed files on local disk.
//
// # Layout
//
//	dir/#lock                             flock'd while a Log has dir open
//	dir/<topic>/meta                      JSON: partition count and TopicOptions
//	dir/<topic>/<partition>/<base>.log    record batches; <base> is the segment's
//	                                      first offset, 20 digits
//	dir/<topic>/<partition>/<base>.idx    the segment's sparse index
//	dir/<topic>/offsets/<group>           a consumer group's committed offsets
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
// index.go documents it. Readers and OffsetForTime binary-search the index,
// then walk batches from there.
//
// # Group commit
//
// Every partition has one writer goroutine. Append encodes the records in
// the caller's goroutine (so the writer never touches caller memory), queues
// one request per partition it touches and waits for all of them. The writer
// takes everything queued (up to MaxBatchBytes), writes it as ONE batch,
// fsyncs once, then publishes it: it advances the partition's end offset,
// appends the index entry if one is due, closes the partition's notify
// channel (replacing it with a new one) to wake waiting readers, and wakes
// the appenders with their offsets and the batch timestamp. N concurrent
// appenders thus share one write and one fsync. Timestamps come from
// Options.Now, clamped so they never decrease within a partition. Before a
// batch that would take the active segment past SegmentBytes, the writer
// rolls a new segment (and fsyncs the directory) and then applies retention.
//
// # Recovery
//
// Open takes the directory lock, then for every partition: sealed segments
// (all but the last) are trusted but their index is verified (monotonic, in
// bounds, its last entry matching the batch it points at, and a framing walk
// from there reaching the end of the file); a bad index is rebuilt from a
// framing walk. The active (last) segment is read completely, checking every
// batch's CRC, records and offsets; the file is truncated at the first torn
// or corrupt batch (logged once with the position, bytes dropped and offset)
// and its index is rebuilt. Since an Append returns only after its batch was
// fsync'd, and a crash can only tear what was written after the last fsync,
// truncation never drops an acknowledged record. A corrupt batch inside a
// sealed segment does not stop Open: readers reaching it get an error
// wrapping intentlog.ErrCorrupt that names the file and position.
//
// # Reading
//
// A Reader finds its segment and position under the partition lock, takes a
// reference on the segment and a snapshot of its durable size and index,
// then reads with ReadAt without any lock, so it runs concurrently with the
// writer and only ever sees fsync'd bytes. At the end of the partition it
// blocks on the notify channel (and its context, Reader.Close and
// Log.Close). Retention removes segments from the list at once but closes a
// segment's file only when its last reader lets go; a reader whose position
// fell below the new start gets ErrOffsetOutOfRange.
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
//	Log.createMu      serializes CreateTopic (held during its file I/O)
//	Log.mu            topics map and closed flag (RWMutex)
//	topic.offMu       committed offsets of one topic (held during their fsync)
//	partition.qmu     append queue, closing and broken flags
//	partition.mu      segment list, bounds, durable sizes, index slices,
//	                  segment reference counts, notify channel
//
// In practice only Log.createMu -> Log.mu is ever nested; partition.qmu and
// partition.mu are never held during file I/O. The active segment's file
// position and .idx file belong to the writer goroutine alone.
//
// # Goroutines
//
// One writer per partition and one retention ticker, all in one WaitGroup.
// Close marks the log closed, wakes blocked readers, stops the writers (each
// finishes its current batch, then fails what is still queued with
// ErrClosed), waits for them and closes every file.
package embedded
