// Package bench is `wail bench`: an open-loop load generator for wail with
// honest latencies, a search for the highest sustainable rate, and the raw
// I/O floor of the machine beside it.
//
// # Method
//
// Open loop (scheduler.go): batch i of B writes has the intended send time
// start + i*B/rate, computed up front and never moved. A bounded pool of
// senders takes due batches; when every sender is busy (the target
// stalls), due batches queue with their intended time, and every latency is
// measured from that time. A stall therefore shows up in the latency of
// every write that should have been sent during it, not only in the few
// that were in flight (no coordinated omission).
//
// Two latencies are recorded in HdrHistograms (microseconds, 3 significant
// digits): ack, from the intended time to the proxy's answer, and
// end-to-end (e2e), from the intended time to the arrival, through a
// subscriber, of the first event of that key whose version is at or above
// the write's version (internal/latency's Matcher). Subscriptions start
// before the first write. A write whose event never comes within the drain
// time counts as unmatched and is recorded at the time the bench gave up, a
// lower bound, so it raises the tail instead of vanishing.
//
// A third latency, delivery, runs from the resolver's read of an event's
// state (ChangeEvent.resolved_at) to its arrival at the subscriber; it is
// meaningful when the server and the bench share a clock, and tells how much
// of e2e is spent between the bus and the subscriber.
//
// Once a second a sampler takes the window histograms, the throughput of
// acknowledged writes and received events, and scrapes the server's
// /metrics for the resolver lag and the reads and covered intents per event
// (scrape.go).
//
// --find-max (findmax.go) steps the rate up by a factor until a step is not
// sustainable (e2e p99 above the bound, lag growing, errors or unmatched
// writes, or fewer writes/s than 90% of the target), then bisects once.
//
// The floor (floor.go) runs the embedded log and the Pebble store directly,
// with the bench's record sizes, batch size, partitions, concurrency and
// fsync policy: raw appends, raw store writes, both in sequence (the write
// path's own I/O) and raw reads.
//
// Output (report.go, plot.go): a table on the terminal with a live progress
// line, a JSON document, and an SVG (or HTML) plot of latency percentiles,
// throughput and lag over time.
package bench
