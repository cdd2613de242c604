// Package versus is `wail bench vs-debezium`: wail and Debezium side by side
// on the same PostgreSQL and Kafka broker, driven by the same open-loop
// workload and measured by the same consumer.
//
// # What runs
//
// For each pipeline in turn (wail first, then Debezium), on a table of its
// own created for the run:
//
//   - wail: a `wail serve --store postgres --log kafka` process. The load
//     goes through its proxy (Connect Write, batches as in `wail bench`);
//     events come from wail.events.<table>.
//   - Debezium: Debezium Server (bench/debezium/run.sh server) with the
//     PostgreSQL connector (pgoutput) and the Kafka sink. The load writes the
//     same mutations straight into PostgreSQL, one transaction per batch
//     (upserts as INSERT ... ON CONFLICT DO UPDATE, deletes as DELETE);
//     events come from <prefix>.public.<table> (JSON).
//
// The workload is internal/bench's: the same key space, key distribution,
// write mix, value size, batch size and senders, with the write id of every
// write in the first 8 bytes of its value. The schedule is internal/bench's
// open-loop Schedule and Dispatch (latency from the intended send time, no
// coordinated omission) and the matcher is internal/latency's Matcher.
//
// # Matching: when is a write delivered
//
// One consumer code (consumer.go, franz-go, read_committed) reads the
// pipeline's topic; a decoder per pipeline (decode.go) turns each record
// into (key, token), where the token is the pipeline's own per-key order of
// states: wail's version (the ack returns it; the record header carries it)
// and Debezium's transaction id (the write learns it with txid_current() in
// its own transaction; the event carries source.txId). A write is delivered
// at the arrival of the first event of its key whose token is at or above
// the write's: the event of that write or of a later state of the key. For
// wail this counts coalescing (one event covering several writes of a key)
// as delivery of all of them; Debezium publishes every committed change, so
// for it the first such event is the write's own. The rule is the one
// internal/bench uses for wail alone.
//
// Writes that should produce no event are not tracked: a Debezium delete of a
// row that does not exist changes nothing and PostgreSQL decodes nothing
// (wail still publishes a delete event for it, and it is tracked there).
// Two writes of one key in the same batch: the batch keeps the last one for
// both pipelines' stores (wail's proxy does so too); the earlier one is
// delivered with it.
//
// Duplicates: an event whose (key, token) the consumer has already seen.
//
// # Resources
//
// Once per step (proc.go), from /proc: CPU seconds (utime+stime) of the
// pipeline's process (wail serve, or Debezium's JVM), of the PostgreSQL
// primary and replica (postmaster and all its children, including the
// walsender that decodes for Debezium), of the Kafka broker and of the load
// generator itself; the pipeline's peak resident memory (VmHWM) and RSS.
//
// # Steps
//
// Each pipeline starts on a fresh table, writes every key of the key space
// once (preload, closed loop) and waits for those events, then runs one
// unrecorded step at the start rate (settling: Debezium's JVM compiles its
// hot code in the first minute, which on 2 cores otherwise lands in the
// first measured step), then the ladder. A step is a warm-up, the measured
// period and a drain (until every write is delivered, or the drain time).
//
// # Sustainable
//
// As `wail bench --find-max`: e2e p99 within the bound, the lag (writes
// acknowledged and not yet delivered) not growing, no errors, every write
// delivered, and at least 90% of the target rate acknowledged. Rates step up
// by a factor from the start rate until a step is not sustainable, then one
// step bisects. Both pipelines walk the same ladder, so every rate below
// the first failure is measured for both.
package versus
